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
import functools
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nodeagent.cri.api import (ContainerConfig, ContainerEvent, ContainerEventType, ContainerState,
                               ContainerStatus, CRIError, NotFound, PodSandboxConfig,
                               PodSandboxStatus)
from nodeagent.cri.containers import Containers
from nodeagent.cri.events import EventHub
from nodeagent.cri.images import Images
from nodeagent.cri.sandbox import Sandboxes
from nodeagent.cri.store import Store
from nodeagent.cri.streams import readable as _readable

RUNTIME_NAME = "nodeagent"


@functools.lru_cache(maxsize=1)
def _version() -> str:
    """Our version, from the installed distribution's metadata: a scan of sys.path (~40 ms
    here), so done once, in a worker thread (NodeRuntime.version)."""
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
        self._watching = False             # true once the first scan's watches are registered
        self._first_scan = asyncio.Lock()  # that scan, once, awaited by every caller
        self._tasks: set[asyncio.Task] = set()
        # Our own threads for blocking work, so that a burst of pod operations neither waits for
        # nor starves the event loop's default executor (6 threads on 2 cores), which the
        # kubelet side uses too. Waits that last (a stop's grace period, an attach) are not done
        # in threads at all: they are pidfds on the loop.
        self._pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="cri")

    # --- housekeeping ----------------------------------------------------------------------------
    # Until the supervisors a previous agent left are watched, a call must not proceed: a
    # container it stops meanwhile would be scanned as already exited and never watched, so no
    # STOPPED event would ever come for it (the scan is slow on a slow machine with many pods).
    # So the first scan is done once, under a lock that every caller waits on; `_watching` turns
    # true only when its watches are registered.
    async def _watch_all(self) -> None:
        """Once, before the first call proceeds: watch every supervisor still running (see
        events.py). The files are read in a thread; only the pidfds are registered on the loop."""
        def scan() -> list[tuple[str, str, tuple[int, int] | None]]:
            found = []
            for cid in self.store.container_ids():
                rec = self.store.container(cid)
                if rec is not None:
                    found.append((cid, rec["sandbox_id"], self.containers.shim_process(cid)))
            return found
        async with self._first_scan:
            if self._watching:
                return
            for cid, sid, shim in await self._blocking(scan):
                self.hub.watch(cid, sid, shim)
            self._watching = True
        self._refill_spares()

    def _refill_spares(self) -> None:
        """Make spare sandboxes up to the pool's size, in a worker thread (spares.py); nobody
        waits for it."""
        spares = self.sandboxes.spares
        if spares is not None and not spares.closed:
            self._pool.submit(spares.refill)

    async def _run(self, fn, *args, **kw):
        if not self._watching:
            await self._watch_all()
        return await self._blocking(fn, *args, **kw)

    async def _blocking(self, fn, *args, **kw):
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, functools.partial(fn, *args, **kw))

    def close(self) -> None:
        """Stop watching (the containers and sandboxes themselves are left as they are)."""
        self.hub.close()
        if self.sandboxes.spares is not None:
            self.sandboxes.spares.closed = True   # the spares made stay for the next service
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.sandboxes.helper.close()
        net = self.sandboxes.network
        if net is not None:
            net.close()

    # --- the service -------------------------------------------------------------------------------
    async def version(self) -> tuple[str, str]:
        return RUNTIME_NAME, await self._blocking(_version)

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        try:
            return await self._made(self.sandboxes.run, self.sandboxes.remove, config)
        finally:
            self._refill_spares()

    async def _made(self, make, unmake, *args) -> str:
        """Run `make` in a thread and return the ID it made. A thread cannot be cancelled: if our
        caller is (the pod was deleted while its sandbox or container was being made), wait for
        the thread, undo what it made, and only then let the cancellation through — otherwise
        nobody would ever learn the ID of what was left."""
        if not self._watching:
            await self._watch_all()
        fut = asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(make, *args))
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            try:
                made = await fut
            except Exception:  # noqa: BLE001 - it failed anyway: nothing to undo
                raise asyncio.CancelledError from None
            await self._blocking(unmake, made)
            raise

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        await asyncio.gather(*(self.stop_container(c.id, 0)
                               for c in await self.list_containers(sandbox_id)
                               if c.state in (ContainerState.RUNNING, ContainerState.CREATED)))
        await self._run(self.sandboxes.stop, sandbox_id)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        await asyncio.gather(*(self.remove_container(c.id)
                               for c in await self.list_containers(sandbox_id)))
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
        cid = await self._made(self.containers.create, self.containers.remove, sandbox_id, config,
                               sandbox_config)
        self.hub.publish(cid, sandbox_id, ContainerEventType.CREATED)
        self.hub.watch(cid, sandbox_id, await self._blocking(self.containers.shim_process, cid))
        return cid

    async def start_container(self, container_id: str) -> None:
        def start() -> dict:                # one trip to a worker thread, not two
            rec = self._record(container_id)
            self.containers.start(container_id)
            return rec
        rec = await self._run(start)
        self.hub.publish(container_id, rec["sandbox_id"], ContainerEventType.STARTED)

    async def stop_container(self, container_id: str, timeout: float) -> None:
        """The stop signal, up to `timeout` seconds, then SIGKILL to every process of the
        container (runtime/container/stop.py's steps, with the waits on the loop: a pidfd of the
        supervisor, which exits once the container's init has exited and exit.json is written)."""
        rec = await self._run(self.store.container, container_id)
        if rec is None:
            return                         # CRI: stopping a removed container succeeds
        shim = await self._blocking(self.containers.shim_process, container_id)
        fd = _pidfd(shim)
        if fd is None:
            return                         # not running: nothing to stop
        try:
            if timeout > 0:
                await self._blocking(self.containers.signal, container_id,
                                     rec.get("stop_signal", 15))
                if await _exited(fd, timeout):
                    return
            await self._blocking(self.containers.kill_all, container_id)
            if not await _exited(fd, 30):
                raise CRIError(f"container {container_id} did not stop within 30 s of SIGKILL")
        finally:
            os.close(fd)

    async def _exit_code(self, container_id: str) -> int:
        """Wait (on the loop) until the container has exited; its exit code."""
        fd = _pidfd(await self._blocking(self.containers.shim_process, container_id))
        if fd is not None:
            try:
                await _readable(fd)
            finally:
                os.close(fd)
        st = await self._blocking(self.containers.status, container_id)
        return st.exit_code if st.exit_code is not None else 255

    async def remove_container(self, container_id: str) -> None:
        rec = await self._run(self.store.container, container_id)
        await self._blocking(self.containers.remove, container_id)
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
        events = self.hub.subscribe()
        if not self._watching:            # the first thing a new agent asks for may be events
            try:
                task = asyncio.get_running_loop().create_task(self._watch_all())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            except RuntimeError:
                pass                      # no loop yet: the first awaited call starts watching
        return events

    # --- streaming -----------------------------------------------------------------------------------
    async def exec_sync(self, container_id: str, cmd: list[str],
                        timeout: float) -> tuple[bytes, bytes, int]:
        from nodeagent.cri.streams import exec_sync
        await self._run(self._record, container_id)
        return await self._blocking(exec_sync, str(self.store.runtime_root), container_id,
                                       list(cmd), timeout)

    async def exec(self, container_id: str, cmd: list[str], *, tty: bool, stdin: bool):
        from nodeagent.cri.streams import start_exec
        await self._run(self._record, container_id)
        return await self._blocking(start_exec, str(self.store.runtime_root), container_id,
                                       list(cmd), tty=tty, stdin=stdin)

    async def attach(self, container_id: str, *, stdin: bool):
        from nodeagent.cri.streams import attach
        rec = await self._run(self._record, container_id)
        return await self._blocking(attach, str(self.store.runtime_root), container_id,
                                    bool(rec.get("tty")), stdin,
                                    lambda: self._exit_code(container_id))

    async def port_forward(self, sandbox_id: str, port: int) -> int:
        from nodeagent.cri.streams import port_forward
        rec = await self._run(self.store.sandbox, sandbox_id)
        if rec is None:
            raise NotFound(f"pod sandbox {sandbox_id} not found")
        return await self._blocking(port_forward, self.sandboxes.helper,
                                       rec.get("namespaces", {}).get("network"), port)

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


def _pidfd(shim: tuple[int, int] | None) -> int | None:
    """A pidfd of the supervisor (pid, start time), or None if it is gone."""
    from runtime.container.state import process_start_time

    if shim is None:
        return None
    try:
        fd = os.pidfd_open(shim[0])
    except OSError:
        return None
    if process_start_time(shim[0]) != shim[1]:
        os.close(fd)
        return None
    return fd


async def _exited(fd: int, timeout: float) -> bool:
    try:
        await asyncio.wait_for(_readable(fd), timeout)
        return True
    except asyncio.TimeoutError:
        return False


# --- opening -----------------------------------------------------------------------------------------
def open_runtime(state_dir: str | os.PathLike, *, cni=None, image_store: str | os.PathLike | None = None,
                 registry_config=None, start_zygote: bool = True, spare_sandboxes: int = 0):
    """The runtime side for one node: (RuntimeService, ImageService).

    state_dir     everything the runtime side makes lives under it (store.py has the layout);
                  `cleanup(state_dir)` removes it all again
    cni           a cni.podnet.PodNetworkConfig (conf dir, plugin dirs, cache dir), or a
                  PodNetwork, or None: sandboxes then get a network namespace with only lo
    image_store   the runtime.images store directory (default: <state_dir>/images)
    registry_config  runtime.images.registry.RegistryConfig (insecure registries, mirrors)
    spare_sandboxes  how many pod networks to keep made ahead of the pods (spares.py); 0: none

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
    sandboxes = Sandboxes(store, network, spares=spare_sandboxes)
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
    """Remove what a dead process left half-created (a record still "creating"), and its
    spare sandboxes."""
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
        # a spare left by another process is removed too: the pod range or network config it
        # was made with may have changed since (spares.py)
        if rec is None or rec.get("phase") in ("creating", "spare"):
            creator = (rec or {}).get("creator")
            if rec is not None and creator and alive(creator[0], creator[1]):
                continue
            try:
                sandboxes.remove(sid)
            except CRIError:
                pass
