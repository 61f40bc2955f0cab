"""/stats/summary and /metrics: what the node and its pods use, in the kubelet's two shapes.

- /stats/summary is the Summary API (k8s.io/kubelet/pkg/apis/stats/v1alpha1): a JSON document with
  the node's cpu/memory/fs and one entry per pod with its containers. metrics-server and
  `kubectl get --raw /api/v1/nodes/<n>/proxy/stats/summary` read it.
- /metrics is Prometheus text (exposition format 0.0.4) with the kubelet's metric names
  (kubelet_running_pods, kubelet_running_containers{container_state=...}, process_*), and
  /metrics/resource the resource metrics with their upstream names (node_cpu_usage_seconds_total,
  container_memory_working_set_bytes{container,pod,namespace}, ...).

Per-container figures come from RuntimeService.container_stats(id), a dict; we read
`cpu_usage_core_nano_seconds`, `memory_working_set_bytes`, `memory_usage_bytes`, `memory_rss_bytes`
when present (the cgroup's cpuacct/cpu.stat and memory files, as the runtime reads them). Node
figures come from psutil.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone

import psutil

from nodeagent.cri.api import ContainerState, CRIError, RuntimeService
from nodeagent.server.pods import PodsProvider, _strip

BOOT = psutil.boot_time()
_PROC = psutil.Process()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _node_cpu_ns() -> int:
    t = psutil.cpu_times()
    return int((t.user + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0) +
                getattr(t, "steal", 0) + t.nice) * 1e9)


class CpuRates:
    """usageNanoCores: the CPU used per second (in nanocores) over the window since the previous
    sample of the same thing — what cAdvisor derives from two of its samples and metrics-server
    (so `kubectl top`) reads. A thing seen for the first time has no rate yet (omitted, as before
    cAdvisor's second sample)."""

    def __init__(self):
        self._last: dict[str, tuple[float, int]] = {}     # key → (monotonic time, core ns)

    def rate(self, key: str, core_ns: int, now: float | None = None) -> int | None:
        now = time.monotonic() if now is None else now
        prev = self._last.get(key)
        self._last[key] = (now, core_ns)
        if prev is None or now <= prev[0] or core_ns < prev[1]:
            return None
        return int((core_ns - prev[1]) / (now - prev[0]))

    def keep_only(self, keys: set[str]) -> None:
        for k in [k for k in self._last if k not in keys]:
            del self._last[k]


_RATES = CpuRates()


def _with_rate(cpu: dict, key: str, seen: set[str]) -> dict:
    seen.add(key)
    if "usageCoreNanoSeconds" in cpu:
        r = _RATES.rate(key, cpu["usageCoreNanoSeconds"])
        if r is not None:
            cpu["usageNanoCores"] = r
    return cpu


def _mem(s: dict) -> dict:
    out = {"time": _now()}
    for key, name in (("memory_working_set_bytes", "workingSetBytes"), ("memory_usage_bytes", "usageBytes"),
                      ("memory_rss_bytes", "rssBytes")):
        if s.get(key) is not None:
            out[name] = int(s[key])
    return out


def _cpu(s: dict) -> dict:
    out = {"time": _now()}
    if s.get("cpu_usage_core_nano_seconds") is not None:
        out["usageCoreNanoSeconds"] = int(s["cpu_usage_core_nano_seconds"])
    return out


async def _container_figures(runtime: RuntimeService, pods: PodsProvider):
    """(pod, container status, stats dict) for every running container the agent knows."""
    out = []
    for pod in pods():
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if not cs.get("containerID") or "running" not in (cs.get("state") or {}):
                continue
            try:
                stats = await runtime.container_stats(_strip(cs["containerID"]))
            except (CRIError, NotImplementedError):
                stats = {}
            out.append((pod, cs, stats or {}))
    return out


async def summary(runtime: RuntimeService, pods: PodsProvider, node_name: str) -> dict:
    vm = psutil.virtual_memory()
    root = psutil.disk_usage("/")
    node = {"nodeName": node_name,
            "startTime": datetime.fromtimestamp(BOOT, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cpu": {"time": _now(), "usageCoreNanoSeconds": _node_cpu_ns()},
            "memory": {"time": _now(), "availableBytes": vm.available, "usageBytes": vm.total - vm.free,
                       "workingSetBytes": vm.total - vm.available},
            "fs": {"time": _now(), "availableBytes": root.free, "capacityBytes": root.total,
                   "usedBytes": root.used},
            "systemContainers": []}
    by_pod: dict[str, dict] = {}
    for pod, cs, s in await _container_figures(runtime, pods):
        md = pod["metadata"]
        entry = by_pod.setdefault(md.get("uid", md["name"]), {
            "podRef": {"name": md["name"], "namespace": md.get("namespace", "default"),
                       "uid": md.get("uid", "")},
            "startTime": (pod.get("status") or {}).get("startTime"),
            "containers": [], "cpu": {"time": _now(), "usageCoreNanoSeconds": 0},
            "memory": {"time": _now(), "workingSetBytes": 0}})
        c = {"name": cs["name"], "startTime": ((cs.get("state") or {}).get("running") or {}).get("startedAt"),
             "cpu": _cpu(s), "memory": _mem(s)}
        entry["containers"].append(c)
        entry["cpu"]["usageCoreNanoSeconds"] += c["cpu"].get("usageCoreNanoSeconds", 0)
        entry["memory"]["workingSetBytes"] += c["memory"].get("workingSetBytes", 0)
    seen: set[str] = set()
    _with_rate(node["cpu"], "node", seen)
    for uid, entry in by_pod.items():
        _with_rate(entry["cpu"], f"pod/{uid}", seen)
        for c in entry["containers"]:
            _with_rate(c["cpu"], f"pod/{uid}/{c['name']}", seen)
    _RATES.keep_only(seen)
    return {"node": node, "pods": list(by_pod.values())}


def _labels(**kv: str) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in kv.items()) + "}"


async def metrics(runtime: RuntimeService, pods: PodsProvider, node_name: str) -> str:
    known = list(pods())
    running_pods = sum(1 for p in known if (p.get("status") or {}).get("phase") == "Running")
    states: dict[str, int] = {s: 0 for s in ("created", "running", "exited", "unknown")}
    try:
        for c in await runtime.list_containers():
            states[{ContainerState.CREATED: "created", ContainerState.RUNNING: "running",
                    ContainerState.EXITED: "exited"}.get(c.state, "unknown")] += 1
    except CRIError:
        pass
    cpu = _PROC.cpu_times()
    lines = [
        "# HELP kubelet_node_name [ALPHA] The node's name. The count is always 1.",
        "# TYPE kubelet_node_name gauge",
        f"kubelet_node_name{_labels(node=node_name)} 1",
        "# HELP kubelet_running_pods [ALPHA] Number of pods that have a running pod sandbox",
        "# TYPE kubelet_running_pods gauge",
        f"kubelet_running_pods {running_pods}",
        "# HELP kubelet_running_containers [ALPHA] Number of containers currently running",
        "# TYPE kubelet_running_containers gauge",
        *(f"kubelet_running_containers{_labels(container_state=s)} {n}" for s, n in states.items()),
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
        "# TYPE process_cpu_seconds_total counter",
        f"process_cpu_seconds_total {cpu.user + cpu.system:.2f}",
        "# HELP process_resident_memory_bytes Resident memory size in bytes.",
        "# TYPE process_resident_memory_bytes gauge",
        f"process_resident_memory_bytes {_PROC.memory_info().rss}",
        "# HELP process_open_fds Number of open file descriptors.",
        "# TYPE process_open_fds gauge",
        f"process_open_fds {len(os.listdir('/proc/self/fd'))}",
        "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.",
        "# TYPE process_start_time_seconds gauge",
        f"process_start_time_seconds {_PROC.create_time():.2f}",
    ]
    return "\n".join(lines) + "\n"


async def resource_metrics(runtime: RuntimeService, pods: PodsProvider) -> str:
    """/metrics/resource, the names metrics-server scrapes."""
    ms = int(time.time() * 1000)
    vm = psutil.virtual_memory()
    lines = ["# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds",
             "# TYPE node_cpu_usage_seconds_total counter",
             f"node_cpu_usage_seconds_total {_node_cpu_ns() / 1e9:.6f} {ms}",
             "# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes",
             "# TYPE node_memory_working_set_bytes gauge",
             f"node_memory_working_set_bytes {vm.total - vm.available} {ms}",
             "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds",
             "# TYPE container_cpu_usage_seconds_total counter",
             "# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes",
             "# TYPE container_memory_working_set_bytes gauge"]
    for pod, cs, s in await _container_figures(runtime, pods):
        lab = _labels(container=cs["name"], namespace=pod["metadata"].get("namespace", "default"),
                      pod=pod["metadata"]["name"])
        if s.get("cpu_usage_core_nano_seconds") is not None:
            lines.append(f"container_cpu_usage_seconds_total{lab} {s['cpu_usage_core_nano_seconds'] / 1e9:.6f} {ms}")
        if s.get("memory_working_set_bytes") is not None:
            lines.append(f"container_memory_working_set_bytes{lab} {int(s['memory_working_set_bytes'])} {ms}")
    return "\n".join(lines) + "\n"
