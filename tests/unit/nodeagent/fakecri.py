"""An in-memory RuntimeService + ImageService (nodeagent/cri/api.py) for the kubelet side's tests.

No process runs: a container's "program" is its command, read as a script for the fake:

    ["sleep", ...] (or anything else)   runs until stopped; a stop exits it with 143 (SIGTERM
                                        honoured) — or 137 when the grace period is 0, or when
                                        the command is ["ignore-term", ...] (killed at the grace)
    ["exit", "N"]                        exits with N right after it starts
    ["oom"]                              is OOM-killed right after it starts (137, OOMKilled)

Images: everything is present except references containing "missing" (the pull fails:
ErrImagePull) or "!" (InvalidImageName). A test can end a container from outside with `exit()`,
and see every call made in `calls`. State survives a new agent (pass the same FakeRuntime),
which is how restart recovery is tested.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import replace

from nodeagent.cri.api import (
    ContainerConfig, ContainerEvent, ContainerEventType, ContainerMetadata, ContainerState,
    ContainerStatus, CreateContainerError, Image, ImagePullError, InvalidImageName, NotFound,
    PodSandboxConfig, PodSandboxStatus, SandboxError, SandboxState)


class FakeRuntime:
    def __init__(self):
        self.working_set = 2 * 2**20          # container_stats' memory use of every container
        self.sandboxes: dict[str, PodSandboxStatus] = {}
        self.containers: dict[str, ContainerStatus] = {}
        self.configs: dict[str, ContainerConfig] = {}
        self.sandbox_configs: dict[str, PodSandboxConfig] = {}
        self.calls: list[tuple] = []
        self.pulled: list[tuple] = []
        self.fail_sandbox: str | None = None
        self.stop_delay = 0.0          # how long a TERM-honouring container takes to exit
        self.healthy: dict[str, bool] = {}
        self.sandbox_delay = 0.0       # how long RunPodSandbox takes
        self.list_delay = 0.0          # how long a full listing takes (a slow machine's)
        self.sandbox_started = asyncio.Event()   # container name → what ["check"] probes answer
        self._ids = itertools.count(1)
        self._ips = itertools.count(2)
        self._listeners: list[asyncio.Queue] = []

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    def _emit(self, cid: str, type_: ContainerEventType) -> None:
        c = self.containers.get(cid)
        ev = ContainerEvent(cid, c.pod_sandbox_id if c else "", type_, time.time())
        for q in self._listeners:
            q.put_nowait(ev)

    # --- RuntimeService -----------------------------------------------------------------------------
    async def version(self) -> tuple[str, str]:
        return ("fakecri", "0.1")

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        self.calls.append(("run_pod_sandbox", config.metadata.name))
        if self.fail_sandbox:
            raise SandboxError(self.fail_sandbox)
        self.sandbox_started.set()
        await asyncio.sleep(self.sandbox_delay)
        sid = self._id("sb")
        ip = None if config.host_network else f"10.244.0.{next(self._ips)}"
        self.sandboxes[sid] = PodSandboxStatus(sid, config.metadata, SandboxState.READY, time.time(),
                                               ip=ip, labels=dict(config.labels),
                                               annotations=dict(config.annotations))
        self.sandbox_configs[sid] = config
        return sid

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        self.calls.append(("stop_pod_sandbox", sandbox_id))
        for c in list(self.containers.values()):
            if c.pod_sandbox_id == sandbox_id and c.state is ContainerState.RUNNING:
                self._exit(c.id, 137)
        sb = self.sandboxes.get(sandbox_id)
        if sb is not None:
            self.sandboxes[sandbox_id] = replace(sb, state=SandboxState.NOTREADY)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        self.calls.append(("remove_pod_sandbox", sandbox_id))
        await self.stop_pod_sandbox(sandbox_id)
        for c in [c for c in self.containers.values() if c.pod_sandbox_id == sandbox_id]:
            del self.containers[c.id]
        self.sandboxes.pop(sandbox_id, None)

    async def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        if sandbox_id not in self.sandboxes:
            raise NotFound(f"sandbox {sandbox_id}")
        return self.sandboxes[sandbox_id]

    async def list_pod_sandboxes(self) -> list[PodSandboxStatus]:
        await asyncio.sleep(self.list_delay)
        return list(self.sandboxes.values())

    async def create_container(self, sandbox_id, config: ContainerConfig, sandbox_config) -> str:
        self.calls.append(("create_container", config.metadata.name, config.metadata.attempt))
        if sandbox_id not in self.sandboxes:
            raise NotFound(f"sandbox {sandbox_id}")
        if config.command[:1] == ("no-such-program",):
            raise CreateContainerError(f'exec: "{config.command[0]}": executable file not found in $PATH')
        cid = self._id("c")
        self.containers[cid] = ContainerStatus(
            cid, sandbox_id, ContainerMetadata(config.metadata.name, config.metadata.attempt),
            ContainerState.CREATED, time.time(), image=config.image,
            image_ref="sha256:" + "ab" * 32, log_path=f"/nonexistent/{config.log_path}",
            labels=dict(config.labels), annotations=dict(config.annotations))
        self.configs[cid] = config
        self._emit(cid, ContainerEventType.CREATED)
        return cid

    async def start_container(self, container_id: str) -> None:
        self.calls.append(("start_container", container_id))
        c = self.containers[container_id]
        self.containers[container_id] = replace(c, state=ContainerState.RUNNING, started_at=time.time(),
                                                pid=1000 + len(self.containers))
        self._emit(container_id, ContainerEventType.STARTED)
        cmd = self.configs[container_id].command
        if cmd[:1] == ("exit",):
            asyncio.get_running_loop().call_later(0.05, self._exit, container_id, int(cmd[1]))
        elif cmd[:1] == ("oom",):
            asyncio.get_running_loop().call_later(0.05, self._exit, container_id, 137, "OOMKilled")

    def _exit(self, cid: str, code: int, reason: str = "") -> None:
        c = self.containers.get(cid)
        if c is None or c.state is not ContainerState.RUNNING:
            return
        self.containers[cid] = replace(c, state=ContainerState.EXITED, exit_code=code,
                                       finished_at=time.time(),
                                       reason=reason or ("Completed" if code == 0 else "Error"))
        self._emit(cid, ContainerEventType.STOPPED)

    def exit(self, cid: str, code: int) -> None:
        """End a running container from outside (as if its program exited)."""
        self._exit(cid, code)

    async def stop_container(self, container_id: str, timeout: float) -> None:
        self.calls.append(("stop_container", container_id, timeout))
        c = self.containers.get(container_id)
        if c is None or c.state is not ContainerState.RUNNING:
            return
        ignores = self.configs[container_id].command[:1] == ("ignore-term",)
        if timeout <= 0:
            self._exit(container_id, 137)
            return
        wait = timeout if ignores else min(timeout, self.stop_delay)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            c = self.containers.get(container_id)
            if c is None or c.state is not ContainerState.RUNNING:
                return              # a shorter stop (a force delete) got there first
            await asyncio.sleep(0.02)
        self._exit(container_id, 137 if ignores else 143)

    async def container_stats(self, container_id: str) -> dict:
        """Every running container uses `working_set` bytes and one process (eviction ranks and
        names containers by it)."""
        if container_id not in self.containers:
            raise NotFound(f"container {container_id} not found")
        return {"id": container_id, "memory_working_set_bytes": self.working_set, "process_count": 1}

    async def remove_container(self, container_id: str) -> None:
        self.calls.append(("remove_container", container_id))
        self.containers.pop(container_id, None)

    async def container_status(self, container_id: str) -> ContainerStatus:
        if container_id not in self.containers:
            raise NotFound(f"container {container_id}")
        return self.containers[container_id]

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        await asyncio.sleep(self.list_delay)
        return [c for c in self.containers.values() if sandbox_id is None or c.pod_sandbox_id == sandbox_id]

    async def container_events(self):
        q: asyncio.Queue = asyncio.Queue()
        self._listeners.append(q)
        try:
            while True:
                yield await q.get()
        finally:
            self._listeners.remove(q)

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float):
        """A probe's command: ["check"] succeeds while `healthy[container name]` is true."""
        self.calls.append(("exec_sync", container_id, tuple(cmd)))
        c = self.containers.get(container_id)
        if c is None or c.state is not ContainerState.RUNNING:
            raise NotFound(f"container {container_id} is not running")
        ok = self.healthy.get(c.metadata.name, True)
        return (b"", b"" if ok else b"unhealthy\n", 0 if ok else 1)

    # --- ImageService -------------------------------------------------------------------------------
    async def pull_image(self, ref: str, auth=()) -> str:
        self.pulled.append((ref, auth))
        if "!" in ref:
            raise InvalidImageName(f"invalid reference format: {ref!r}")
        if "missing" in ref:
            raise ImagePullError(f"{ref}: manifest unknown")
        return "sha256:" + "ab" * 32

    async def image_status(self, ref: str) -> Image | None:
        if "!" in ref:
            raise InvalidImageName(f"invalid reference format: {ref!r}")
        if "missing" in ref or "pull-me" in ref and not any(p[0] == ref for p in self.pulled):
            return None
        return Image("sha256:" + "ab" * 32, (ref,), (), 1234, uid=0, username="root")

    async def list_images(self) -> list[Image]:
        return []

    async def remove_image(self, ref: str) -> None:
        pass


class NullCgroups:
    """The container manager's paths, without touching cgroups (no root in unit tests)."""

    def __init__(self):
        from nodeagent.cm import ContainerManager
        self.cm = ContainerManager(enabled=False)
        self.removed: list[str] = []

    def ensure_pod(self, pod: dict) -> str:
        return self.cm.pod_path(pod)

    def pod_path(self, pod: dict) -> str:
        return self.cm.pod_path(pod)

    def remove_pod(self, uid: str) -> None:
        self.removed.append(uid)

    def start(self) -> None:
        pass
