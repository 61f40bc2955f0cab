"""Shared parts of the node benchmarks (pod_start.py, density.py, footprint.py).

A benchmark node is `nodeagent up` in a network namespace of its own (tests/nodekit.py), so the
machine's network is never touched. Timing pods from outside would mean polling kubectl; instead
the measuring loop runs *inside* that namespace (`nsenter --net` re-runs this file's `driver`),
where it talks to the API server on loopback with our asyncio client and sees each pod's phase
change through a watch — the moment a user's `kubectl get -w` would print it.

The peer is Debian's podman (`podman play kube` of the same pod spec, the same busybox image
copied in with skopeo), run in a scratch network namespace with its own storage under the
benchmark's temp dir, as FACTS.md describes.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.nodekit import Node, busybox_image  # noqa: E402

IMAGE_REPO = "localhost/busybox"
IMAGE = f"{IMAGE_REPO}:1"


def pod_manifest(name: str, namespace: str = "default", node_name: str | None = None) -> dict:
    """The benchmark pod. `node_name` binds it directly (a tree without a scheduler yet; with one,
    leave it None so that the scheduler's binding is part of what is timed)."""
    spec = {"containers": [{"name": "main", "image": IMAGE, "imagePullPolicy": "Never",
                            "command": ["sleep", "3600"]}],
            "terminationGracePeriodSeconds": 0}
    if node_name:
        spec["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": {"bench": "pods"}},
            "spec": spec}


def _has_scheduler() -> bool:
    import importlib.util
    return importlib.util.find_spec("controlplane.scheduler") is not None


def stats(values: list[float]) -> dict:
    v = sorted(values)
    if not v:
        return {"n": 0}
    p99 = v[min(len(v) - 1, max(0, round(0.99 * len(v)) - 1))]
    return {"n": len(v), "median": statistics.median(v), "p99": p99, "min": v[0], "max": v[-1]}


def fmt_ms(s: dict) -> str:
    if not s.get("n"):
        return "n/a"
    return f"median {s['median'] * 1000:7.1f} ms   p99 {s['p99'] * 1000:7.1f} ms   (n={s['n']})"


# --- our node ---------------------------------------------------------------------------------------
def start_node(base: Path, name: str) -> Node:
    node = Node(base, name)
    busybox_image(base / "oci")
    node.import_image(base / "oci", IMAGE_REPO)
    node.up()
    return node


def run_driver(node: Node, *args: str, timeout: float = 900) -> dict:
    """Run driver(...) below inside the node's namespace; its last stdout line is JSON."""
    out = subprocess.run(["nsenter", f"--net={node.netns}", sys.executable, __file__, "driver",
                          str(node.kubeconfig), *args], capture_output=True, text=True,
                         timeout=timeout, cwd=REPO)
    if out.returncode != 0:
        raise SystemExit(f"driver failed: {out.stderr[-3000:]}\n{node.log_tail()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


async def _create_and_watch(kubeconfig: str, count: int, rate: float, prefix: str) -> dict:
    """Create `count` pods at `rate` per second (0: all at once) and time each create → Running
    as seen by a watch. Returns latencies and the time until all were Running."""
    from apiclient import NODES, PODS, ApiClient, load_kubeconfig

    api = ApiClient(load_kubeconfig(kubeconfig))
    node_name = None
    if not _has_scheduler():
        node_name = (await api.list(NODES))["items"][0]["metadata"]["name"]
    created: dict[str, float] = {}
    running: dict[str, float] = {}
    all_running = asyncio.Event()
    listed = await api.list(PODS, "default")
    rv = listed["metadata"]["resourceVersion"]

    def seen(pod: dict) -> None:
        name = pod["metadata"]["name"]
        if name.startswith(prefix) and name not in running and \
                (pod.get("status") or {}).get("phase") == "Running":
            running[name] = time.perf_counter()
            if len(running) == count:
                all_running.set()

    async def watch() -> None:
        nonlocal rv
        while not all_running.is_set():
            # The server may end a watch, or answer 410 when this one fell behind its event
            # window (a burst of creates and status writes): resume, or list and go on.
            try:
                async for ev in api.watch(PODS, "default", resource_version=rv):
                    rv = ev.resource_version or rv
                    seen(ev.object)
                    if all_running.is_set():
                        return
            except Exception as e:  # noqa: BLE001 - Expired, Unreachable: list again
                print(f"watch: {e!r}; listing", file=sys.stderr)
                listed = await api.list(PODS, "default")
                rv = listed["metadata"]["resourceVersion"]
                for pod in listed["items"]:
                    seen(pod)

    watcher = asyncio.create_task(watch())
    t0 = time.perf_counter()
    creates = []
    for i in range(count):
        name = f"{prefix}{i:04d}"
        if rate > 0:
            await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
        created[name] = time.perf_counter()
        creates.append(asyncio.create_task(api.create(PODS, pod_manifest(name, node_name=node_name), "default")))
    await asyncio.gather(*creates)
    try:
        await asyncio.wait_for(all_running.wait(), timeout=max(120.0, count * 2.0))
    except asyncio.TimeoutError:
        pass
    watcher.cancel()
    await api.close()
    lat = [running[n] - created[n] for n in running]
    return {"latencies": lat, "running": len(running), "count": count,
            "all_running_after": (max(running.values()) - t0) if len(running) == count else None}


async def _delete_all(kubeconfig: str, prefix: str) -> None:
    from apiclient import PODS, ApiClient, load_kubeconfig

    api = ApiClient(load_kubeconfig(kubeconfig))
    pods = (await api.list(PODS, "default"))["items"]
    await asyncio.gather(*(api.delete(PODS, p["metadata"]["name"], "default")
                           for p in pods if p["metadata"]["name"].startswith(prefix)))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        left = [p for p in (await api.list(PODS, "default"))["items"]
                if p["metadata"]["name"].startswith(prefix)]
        if not left:
            break
        await asyncio.sleep(0.5)
    await api.close()


def driver(argv: list[str]) -> None:
    kubeconfig, verb, *rest = argv
    if verb == "create":
        count, rate, prefix = int(rest[0]), float(rest[1]), rest[2]
        print(json.dumps(asyncio.run(_create_and_watch(kubeconfig, count, rate, prefix))))
    elif verb == "delete":
        asyncio.run(_delete_all(kubeconfig, rest[0]))
        print(json.dumps({"deleted": True}))


# --- memory -----------------------------------------------------------------------------------------
def pss_rss(pids) -> tuple[int, int]:
    import psutil

    pss = rss = 0
    for pid in pids:
        try:
            info = psutil.Process(pid).memory_full_info()
            pss += info.pss
            rss += info.rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return pss, rss


def in_kubepods(pid: int) -> bool:
    try:
        return "kubepods" in Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False


def pod_overhead_pids(under: str | os.PathLike | None = None) -> list[int]:
    """The per-pod processes that are not the pods' own programs: the parents of container
    processes that are themselves outside the pods' cgroups (our supervisors; podman's conmon),
    plus podman's infra (pause) processes (in kubepods? no: podman puts them in the pod's
    cgroup; they are counted by the caller). With `under`, only parents whose command line names
    that directory (our supervisors name their node's state dir): other nodes on the machine —
    other benchmarks, tests — are not ours to count."""
    import psutil

    out = set()
    for p in psutil.process_iter(["pid", "ppid"]):
        if in_kubepods(p.info["pid"]) and not in_kubepods(p.info["ppid"]) and p.info["ppid"] > 1:
            out.add(p.info["ppid"])
    if under is not None:
        mark = str(under).encode()
        out = {pid for pid in out if mark in _cmdline(pid)}
    return sorted(out)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


# --- podman, the peer -------------------------------------------------------------------------------
class Podman:
    """Debian's podman with storage, run dir and config under `base`, in a scratch netns."""

    def __init__(self, base: Path):
        self.base = base
        self.netns_name = f"na-podman-{os.getpid()}"
        self.netns = f"/run/netns/{self.netns_name}"
        self.conf = base / "containers.conf"
        self.root, self.runroot = base / "storage", base / "run"

    @staticmethod
    def available() -> str | None:
        for tool in ("podman", "skopeo"):
            if shutil.which(tool) is None:
                return f"{tool} is not installed (apt-get install podman skopeo)"
        return None

    def _env(self) -> dict:
        return dict(os.environ, CONTAINERS_CONF=str(self.conf))

    def cmd(self, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        argv = ["nsenter", f"--net={self.netns}", "podman", "--root", str(self.root),
                "--runroot", str(self.runroot), "--cgroup-manager", "cgroupfs", *args]
        out = subprocess.run(argv, capture_output=True, text=True, env=self._env(), **kw)
        if check and out.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)}: {out.stderr.strip()[-2000:]}")
        return out

    def setup(self, oci_layout: Path) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.conf.write_text('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n')
        subprocess.run(["ip", "netns", "add", self.netns_name], check=True)
        subprocess.run(["nsenter", f"--net={self.netns}", "ip", "link", "set", "lo", "up"], check=True)
        dest = f"containers-storage:[overlay@{self.root}+{self.runroot}]{IMAGE}"
        subprocess.run(["skopeo", "copy", "-q", f"oci:{oci_layout}:1", dest], check=True,
                       env=self._env(), capture_output=True)

    def play(self, name: str) -> float:
        path = self.base / f"{name}.json"
        path.write_text(json.dumps(pod_manifest(name)))   # JSON is YAML
        t = time.perf_counter()
        self.cmd("play", "kube", str(path))
        return time.perf_counter() - t

    def teardown(self) -> None:
        self.cmd("pod", "rm", "-a", "-f", "-t", "0", check=False, timeout=1800)  # -t 0: no 10 s TERM wait
        subprocess.run(["ip", "netns", "delete", self.netns_name], capture_output=True)


if __name__ == "__main__" and sys.argv[1:2] == ["driver"]:
    driver(sys.argv[2:])
