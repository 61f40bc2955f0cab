"""The RuntimeService of api.py, over runtime/, runtime.images and cni.podnet — and `open_runtime`,
the one call the kubelet side makes to get it.

    runtime, images = open_runtime("/var/lib/nodeagent/node",
                                   cni=PodNetworkConfig(conf_dir=..., bin_dirs=..., cache_dir=...))
    sid = await runtime.run_pod_sandbox(PodSandboxConfig(...))
    cid = await runtime.create_container(sid, ContainerConfig(...), sandbox_config)
    await runtime.start_container(cid)
    async for ev in runtime.container_events(): ...

This module is the asyncio face only: every method hands its blocking work (fork/exec of helpers,
netlink, unix-socket requests to supervisors, files) to a worker thread, and publishes events on
the loop. The work itself lives in sandbox.py (namespaces, CNI, /etc files), containers.py
(create/start/stop/remove/status over the runtime), streams.py (exec, attach, port-forward),
images.py (ImageService), events.py (the event hub). store.py says what is on disk.

Restart. A service is only a view of its state dir: open a new one on the same directory (after
the agent was killed, or in a test after dropping the old object) and it lists the same sandboxes
and containers with the same IDs, reads the exits that happened meanwhile from the supervisors'
exit.json, and starts watching the supervisors still running. Records left "creating" by a
process that died mid-create are finished off (removed) when the service opens.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from nodeagent.cri.api import (ContainerConfig, ContainerEvent, ContainerEventType, ContainerState,
                               ContainerStatus, CRIError, NotFound, PodSandboxConfig,
                               PodSandboxStatus)
from nodeagent.cri.containers import Containers
from nodeagent.cri.events import EventHub
from nodeagent.cri.images import Images
from nodeagent.cri.sandbox import Sandboxes
from nodeagent.cri.store import Store

RUNTIME_NAME = "nodeagent"


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("nodeagent")
    except Exception:  # noqa: BLE001 - not installed as a distribution (a plain checkout)
        return "0.0.0"


class NodeRuntime:
    """RuntimeService (api.py). One per state dir and process; methods may run concurrently for
    different pods (the kubelet side serialises the calls for one pod, as pod workers do)."""

    def __init__(self, store: Store, sandboxes: Sandboxes, containers: Containers):
        self.store = store
        self.sandboxes = sandboxes
        self.containers = containers
        self.hub = EventHub()
        self._watching = False

    # --- housekeeping ----------------------------------------------------------------------------
    def _watch_all(self) -> None:
        """On the loop, once: watch every supervisor still running (see events.py)."""
        if self._watching:
            return
        self._watching = True
        for cid in self.store.container_ids():
            rec = self.store.container(cid)
            if rec is not None:
                self.hub.watch(cid, rec["sandbox_id"], self.containers.shim_process(cid))

    async def _run(self, fn, *args):
        self._watch_all()
        return await asyncio.to_thread(fn, *args)

    def close(self) -> None:
        """Stop watching (the containers and sandboxes themselves are left as they are)."""
        self.hub.close()
        net = self.sandboxes.network
        if net is not None:
            net.close()

    # --- the service -------------------------------------------------------------------------------
    async def version(self) -> tuple[str, str]:
        return RUNTIME_NAME, _version()

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        return await self._run(self.sandboxes.run, config)

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        for c in await self.list_containers(sandbox_id):
            if c.state in (ContainerState.RUNNING, ContainerState.CREATED):
                await self.stop_container(c.id, 0)
        await self._run(self.sandboxes.stop, sandbox_id)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        for c in await self.list_containers(sandbox_id):
            await self.remove_container(c.id)
        await self._run(self.sandboxes.remove, sandbox_id)

    async def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        st = await self._run(self.sandboxes.status, sandbox_id)
        if st is None:
            raise NotFound(f"pod sandbox {sandbox_id} not found")
        return st

    async def list_pod_sandboxes(self) -> list[PodSandboxStatus]:
        def all_() -> list[PodSandboxStatus]:
            out = []
            for sid in self.store.sandbox_ids():
                st = self.sandboxes.status(sid)
                if st is not None:
                    out.append(st)
            return out
        return await self._run(all_)

    async def create_container(self, sandbox_id: str, config: ContainerConfig,
                               sandbox_config: PodSandboxConfig) -> str:
        cid = await self._run(self.containers.create, sandbox_id, config, sandbox_config)
        self.hub.publish(cid, sandbox_id, ContainerEventType.CREATED)
        self.hub.watch(cid, sandbox_id, await asyncio.to_thread(self.containers.shim_process, cid))
        return cid

    async def start_container(self, container_id: str) -> None:
        rec = await self._run(self._record, container_id)
        await asyncio.to_thread(self.containers.start, container_id)
        self.hub.publish(container_id, rec["sandbox_id"], ContainerEventType.STARTED)

    async def stop_container(self, container_id: str, timeout: float) -> None:
        await self._run(self.containers.stop, container_id, timeout)

    async def remove_container(self, container_id: str) -> None:
        rec = await self._run(self.store.container, container_id)
        await asyncio.to_thread(self.containers.remove, container_id)
        self.hub.unwatch(container_id)
        if rec is not None:
            self.hub.publish(container_id, rec["sandbox_id"], ContainerEventType.DELETED)

    async def container_status(self, container_id: str) -> ContainerStatus:
        return await self._run(self.containers.status, container_id)

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        def all_() -> list[ContainerStatus]:
            out = []
            for cid in self.store.container_ids():
                rec = self.store.container(cid)
                if rec is None or (sandbox_id is not None and rec["sandbox_id"] != sandbox_id):
                    continue
                out.append(self.containers.status(cid, rec))
            return out
        return await self._run(all_)

    def container_events(self) -> AsyncIterator[ContainerEvent]:
        return self.hub.subscribe()

    # --- streaming -----------------------------------------------------------------------------------
    async def exec_sync(self, container_id: str, cmd: list[str],
                        timeout: float) -> tuple[bytes, bytes, int]:
        from nodeagent.cri.streams import exec_sync
        await self._run(self._record, container_id)
        return await asyncio.to_thread(exec_sync, str(self.store.runtime_root), container_id,
                                       list(cmd), timeout)

    async def exec(self, container_id: str, cmd: list[str], *, tty: bool, stdin: bool):
        from nodeagent.cri.streams import start_exec
        await self._run(self._record, container_id)
        return await asyncio.to_thread(start_exec, str(self.store.runtime_root), container_id,
                                       list(cmd), tty=tty, stdin=stdin)

    async def attach(self, container_id: str, *, stdin: bool):
        from nodeagent.cri.streams import attach
        rec = await self._run(self._record, container_id)
        return await asyncio.to_thread(attach, str(self.store.runtime_root), container_id,
                                       bool(rec.get("tty")))

    async def port_forward(self, sandbox_id: str, port: int) -> int:
        from nodeagent.cri.streams import port_forward
        rec = await self._run(self.store.sandbox, sandbox_id)
        if rec is None:
            raise NotFound(f"pod sandbox {sandbox_id} not found")
        return await asyncio.to_thread(port_forward, rec.get("namespaces", {}).get("network"), port)

    async def container_stats(self, container_id: str) -> dict:
        from nodeagent.cri.cgroups import usage

        def stats() -> dict:
            self._record(container_id)
            cg = self.containers.cgroup(container_id)
            return {"id": container_id, **(usage(cg) if cg is not None else {})}
        return await self._run(stats)

    def _record(self, cid: str) -> dict:
        rec = self.store.container(cid)
        if rec is None:
            raise NotFound(f"container {cid} not found")
        return rec


# --- opening -----------------------------------------------------------------------------------------
def open_runtime(state_dir: str | os.PathLike, *, cni=None, image_store: str | os.PathLike | None = None,
                 registry_config=None, start_zygote: bool = True):
    """The runtime side for one node: (RuntimeService, ImageService).

    state_dir     everything the runtime side makes lives under it (store.py has the layout);
                  `cleanup(state_dir)` removes it all again
    cni           a cni.podnet.PodNetworkConfig (conf dir, plugin dirs, cache dir), or a
                  PodNetwork, or None: sandboxes then get a network namespace with only lo
    image_store   the runtime.images store directory (default: <state_dir>/images)
    registry_config  runtime.images.registry.RegistryConfig (insecure registries, mirrors)

    Blocking (it may start the runtime's zygote, ~0.2 s): call it before the event loop runs, or
    through asyncio.to_thread. The process calling it must stay in the cgroup and network
    namespace the node's containers are relative to (see cgroups.py, zygote.py).
    """
    from runtime.images import ImageStore

    from nodeagent.cri import zygote

    store = Store(state_dir)
    store.make_dirs()
    network = None
    if cni is not None:
        from cni.podnet import PodNetwork, PodNetworkConfig
        network = PodNetwork(cni) if isinstance(cni, PodNetworkConfig) else cni
    images = ImageStore(image_store or store.root / "images")
    _prepare_pins_dir(store)
    if start_zygote:
        zygote.ensure(str(store.runtime_root))
    sandboxes = Sandboxes(store, network)
    containers = Containers(store, images)
    _finish_interrupted(store, sandboxes, containers)
    return NodeRuntime(store, sandboxes, containers), Images(images, registry_config)


def _prepare_pins_dir(store: Store) -> None:
    """The sandboxes' directory as a shared mount (network/netns.py says why: a pinned namespace
    is a mount, and its unmount must reach copies of it in other mount namespaces)."""
    from network.netns import prepare_netns_dir
    from runtime.sys import real

    prepare_netns_dir(Path(store.sandboxes), real())


def _finish_interrupted(store: Store, sandboxes: Sandboxes, containers: Containers) -> None:
    """Remove what a dead process left half-created (a record still "creating")."""
    from runtime.container.state import alive

    for cid in store.container_ids():
        rec = store.container(cid)
        if rec is None or rec.get("phase") == "creating":
            creator = (rec or {}).get("creator")
            if rec is not None and creator and alive(creator[0], creator[1]):
                continue
            try:
                containers.remove(cid)
            except CRIError:
                pass
    for sid in store.sandbox_ids():
        rec = store.sandbox(sid)
        if rec is None or rec.get("phase") == "creating":
            creator = (rec or {}).get("creator")
            if rec is not None and creator and alive(creator[0], creator[1]):
                continue
            try:
                sandboxes.remove(sid)
            except CRIError:
                pass
