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
    def __init__(self, kubeconfig, *, make_ready: Callable[[dict], bool] = lambda p: True):
        self.kubeconfig = kubeconfig
        self.make_ready = make_ready
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
