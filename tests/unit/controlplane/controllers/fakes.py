"""A fake kubelet for controller tests: it watches pods through the API (in its own thread and
event loop) and does what a kubelet would visibly do — marks new pods Running and Ready through the
status subresource and confirms graceful deletions — while recording what it saw, so a test can
check an invariant over every intermediate state (e.g. a rolling update's surge) rather than
sampling it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from apiclient import PODS, ApiClient, ApiError, load_kubeconfig


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class FakeKubelet:
    def __init__(self, kubeconfig, *, make_ready: Callable[[dict], bool] = lambda p: True,
                 bind_pinned: bool = False):
        self.kubeconfig = kubeconfig
        self.make_ready = make_ready
        self.bind_pinned = bind_pinned  # stand in for the scheduler for pods pinned by matchFields
        self.pods: dict[tuple[str, str], dict] = {}
        self.observers: list[Callable[[dict], None]] = []  # called with the pod map after each event
        self.lock = threading.Lock()
        self.paused = False  # when set, new pods stay not ready
        self._loop = asyncio.new_event_loop()
        self._stop = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with ApiClient(load_kubeconfig(self.kubeconfig)) as api:
            watcher = asyncio.ensure_future(self._watch(api))
            await self._stop.wait()
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    async def _watch(self, api: ApiClient) -> None:
        rv = None
        while True:
            try:
                if rv is None:
                    items, rv = await api.list_all(PODS)
                    with self.lock:
                        self.pods = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in items}
                async for ev in api.watch(PODS, resource_version=rv, timeout_seconds=60):
                    rv = ev.resource_version or rv
                    if ev.type == "BOOKMARK":
                        continue
                    p = ev.object
                    k = (p["metadata"]["namespace"], p["metadata"]["name"])
                    with self.lock:
                        if ev.type == "DELETED":
                            self.pods.pop(k, None)
                        else:
                            self.pods[k] = p
                        for obs in self.observers:
                            obs(self.pods)
                    if ev.type != "DELETED":
                        await self._act(api, p)
            except ApiError:
                rv = None
                await asyncio.sleep(0.2)

    async def _act(self, api: ApiClient, p: dict) -> None:
        md, st = p["metadata"], p.get("status") or {}
        try:
            if md.get("deletionTimestamp"):
                if p.get("spec", {}).get("nodeName"):
                    await api.delete(PODS, md["name"], md["namespace"], grace_period_seconds=0)
                return
            if self.bind_pinned and not p["spec"].get("nodeName"):
                node = pinned_node(p)
                if node:
                    await api.create(PODS, {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": md["name"]},
                                            "target": {"apiVersion": "v1", "kind": "Node", "name": node}},
                                     md["namespace"], subresource="binding", name=md["name"])
                    return  # the bound pod comes back as an event; made ready then
            ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])
            if not ready and not self.paused and st.get("phase") in (None, "Pending") and self.make_ready(p):
                t = now()
                await api.patch(PODS, md["name"], {"status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": t},
                    {"type": "ContainersReady", "status": "True", "lastTransitionTime": t},
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": t}]}},
                    md["namespace"], subresource="status")
        except ApiError:
            pass


def pinned_node(pod: dict) -> str | None:
    req = (((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in req.get("nodeSelectorTerms") or []:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and len(f.get("values") or []) == 1:
                return f["values"][0]
    return None


class FakeNodes:
    """Nodes created through the API, each with a Ready condition and a Lease in kube-node-lease
    that a background thread renews every `period` seconds, as kubelets do; `stop(name)` stops
    renewing one (the node "dies"), `start(name)` brings it back."""

    def __init__(self, kubeconfig, period: float = 0.5):
        self.kubeconfig, self.period = kubeconfig, period
        self.alive: set[str] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._api: ApiClient | None = None
        self._renewer = None

    def __enter__(self):
        self._thread.start()
        self._call(self._open())
        return self

    def __exit__(self, *exc):
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _call(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _open(self):
        self._api = ApiClient(load_kubeconfig(self.kubeconfig))
        self._renewer = asyncio.ensure_future(self._renew())

    async def _close(self):
        self._renewer.cancel()
        await asyncio.gather(self._renewer, return_exceptions=True)
        await self._api.close()

    def add(self, name: str, labels: dict | None = None) -> None:
        self._call(self._add(name, labels or {}))
        self.alive.add(name)

    async def _add(self, name: str, labels: dict) -> None:
        from apiclient import LEASES, NODES
        t = now()
        await self._api.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": name, "labels": {"kubernetes.io/hostname": name, **labels}}})
        conds = [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
                  "lastHeartbeatTime": t, "lastTransitionTime": t}]
        for ct in ("MemoryPressure", "DiskPressure", "PIDPressure"):
            conds.append({"type": ct, "status": "False", "lastHeartbeatTime": t, "lastTransitionTime": t})
        await self._api.patch(NODES, name, {"status": {"conditions": conds, "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                                                       "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}},
                              subresource="status")
        await self._api.create(LEASES, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                        "metadata": {"name": name, "namespace": "kube-node-lease"},
                                        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                                                 "renewTime": micro()}}, "kube-node-lease")

    def stop(self, name: str) -> None:
        self.alive.discard(name)

    def start(self, name: str) -> None:
        """Renew again and post Ready=True, as a kubelet that came back would."""
        self.alive.add(name)
        self._call(self._ready(name))

    async def _ready(self, name: str) -> None:
        from apiclient import NODES
        t = now()

        def fix(node):
            conds = [c for c in node["status"].get("conditions") or [] if c["type"] != "Ready"]
            conds.append({"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
                          "lastHeartbeatTime": t, "lastTransitionTime": t})
            node["status"]["conditions"] = conds
            return node
        await self._api.update_with_retry(NODES, name, fix, subresource="status")

    async def _renew(self) -> None:
        from apiclient import LEASES
        while True:
            for name in list(self.alive):
                try:
                    await self._api.patch(LEASES, name, {"spec": {"renewTime": micro()}}, "kube-node-lease")
                except ApiError:
                    pass
            await asyncio.sleep(self.period)


def micro() -> str:
    from datetime import datetime, timezone
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
