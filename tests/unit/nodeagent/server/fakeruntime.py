"""A RuntimeService stand-in for the kubelet API tests: "containers" are host processes.

- exec runs the command as a local subprocess (pipes, or a pty for tty=True);
- a container has a CRI log file the test writes itself (`write_log`), and a state the test sets;
- a container may have a main process (`start_main`): attach gets its stdin and a copy of its
  stdout, fanned out by a reader task the way a runtime's shim copies output;
- port_forward connects to 127.0.0.1:<port> — the "pod network" is loopback.
Only what the kubelet API uses is implemented.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import socket
import struct
import subprocess
import termios
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from nodeagent.cri.api import (ContainerMetadata, ContainerState, ContainerStatus, NotFound,
                               PodSandboxMetadata, PodSandboxStatus, SandboxState)


def cri_time(t: float) -> str:
    dt = datetime.fromtimestamp(t, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int((t % 1) * 1e9):09d}Z"


class FakeSession:
    def __init__(self, proc: subprocess.Popen, stdin: int, stdout: int, stderr: int, tty_fd: int,
                 owned: list[int]):
        self.proc = proc
        self.stdin, self.stdout, self.stderr, self.tty_fd = stdin, stdout, stderr, tty_fd
        self._owned = owned

    def resize(self, rows: int, cols: int) -> None:
        if self.tty_fd >= 0:
            fcntl.ioctl(self.tty_fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    async def wait(self) -> int:
        if self.proc is None:
            await asyncio.Event().wait()
        pidfd = os.pidfd_open(self.proc.pid)
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        loop.add_reader(pidfd, lambda: done.done() or done.set_result(None))
        try:
            await done
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
        return self.proc.wait()

    def close(self) -> None:
        for fd in self._owned:
            try:
                os.close(fd)
            except OSError:
                pass
        self._owned = []
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@dataclass
class FakeContainer:
    id: str
    name: str
    sandbox: str
    log_path: Path
    state: ContainerState = ContainerState.RUNNING
    attempt: int = 0
    main: subprocess.Popen | None = None
    listeners: list[int] = field(default_factory=list)   # write ends of attach pipes


class FakeRuntime:
    def __init__(self, root: Path):
        self.root = root
        self.containers: dict[str, FakeContainer] = {}
        self.sandboxes: dict[str, PodSandboxStatus] = {}
        self.exec_calls: list[list[str]] = []

    # ---- test setup ----
    def add_sandbox(self, sid: str, name: str, namespace: str, uid: str) -> None:
        self.sandboxes[sid] = PodSandboxStatus(sid, PodSandboxMetadata(name, namespace, uid),
                                               SandboxState.READY, time.time(), ip="127.0.0.1")

    def add_container(self, cid: str, name: str, sandbox: str, attempt: int = 0,
                      state: ContainerState = ContainerState.RUNNING) -> FakeContainer:
        path = self.root / f"{cid}.log"
        path.touch()
        c = FakeContainer(cid, name, sandbox, path, state, attempt)
        self.containers[cid] = c
        return c

    def write_log(self, cid: str, text: str, stream: str = "stdout", at: float | None = None) -> None:
        with open(self.containers[cid].log_path, "a") as f:
            for line in text.splitlines():
                f.write(f"{cri_time(at or time.time())} {stream} F {line}\n")

    def start_main(self, cid: str, argv: list[str]) -> None:
        """Give the container a main process to attach to (called on the server's loop)."""
        c = self.containers[cid]
        c.main = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        fd = c.main.stdout.fileno()
        os.set_blocking(fd, False)

        loop = asyncio.get_event_loop()   # the server's loop (set by its thread)

        def readable() -> None:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return
            if not data:
                loop.remove_reader(fd)
                return
            for w in list(c.listeners):
                try:
                    os.write(w, data)
                except OSError:
                    c.listeners.remove(w)
        loop.add_reader(fd, readable)

    def stop_mains(self) -> None:
        """End the main processes (after the server's loop has stopped). Left alone they would live
        as long as the pytest process does — with the unit tier on pytest-xdist, a worker's whole
        run — since they end only when their stdin closes."""
        for c in self.containers.values():
            if c.main is not None and c.main.poll() is None:
                c.main.kill()
                c.main.wait()
            if c.main is not None:
                c.main.stdin.close()
                c.main.stdout.close()

    # ---- RuntimeService ----
    async def container_status(self, cid: str) -> ContainerStatus:
        c = self.containers.get(cid)
        if c is None:
            raise NotFound(f"container {cid} not found")
        return ContainerStatus(c.id, c.sandbox, ContainerMetadata(c.name, c.attempt), c.state,
                               time.time(), "busybox", "sha256:0", log_path=str(c.log_path))

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        return [await self.container_status(c) for c in self.containers]

    async def list_pod_sandboxes(self) -> list[PodSandboxStatus]:
        return list(self.sandboxes.values())

    async def container_stats(self, cid: str) -> dict:
        return {"cpu_usage_core_nano_seconds": 1_500_000_000, "memory_working_set_bytes": 4 << 20}

    async def exec(self, cid: str, cmd: list[str], *, tty: bool, stdin: bool) -> FakeSession:
        if cid not in self.containers:
            raise NotFound(f"container {cid} not found")
        self.exec_calls.append(cmd)
        if tty:
            master, slave = pty.openpty()
            proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave,
                                    start_new_session=True)
            os.close(slave)
            return FakeSession(proc, -1, -1, -1, master, [master])
        fds = [os.pipe() for _ in range(3)]
        proc = subprocess.Popen(cmd, stdin=fds[0][0] if stdin else subprocess.DEVNULL,
                                stdout=fds[1][1], stderr=fds[2][1])
        for fd in (fds[0][0], fds[1][1], fds[2][1]):
            os.close(fd)
        if not stdin:
            os.close(fds[0][1])
        w = fds[0][1] if stdin else -1
        return FakeSession(proc, w, fds[1][0], fds[2][0], -1,
                           [fd for fd in (w, fds[1][0], fds[2][0]) if fd >= 0])

    async def attach(self, cid: str, *, stdin: bool) -> FakeSession:
        c = self.containers[cid]
        r, w = os.pipe()
        c.listeners.append(w)
        in_fd = os.dup(c.main.stdin.fileno()) if stdin else -1

        class Attached(FakeSession):
            def close(self) -> None:
                if w in c.listeners:
                    c.listeners.remove(w)
                os.close(w)
                super().close()
        return Attached(None, in_fd, r, -1, -1, [fd for fd in (in_fd, r) if fd >= 0])

    async def port_forward(self, sandbox_id: str, port: int) -> int:
        s = socket.socket()
        s.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(s, ("127.0.0.1", port))
        except OSError:
            s.close()
            raise
        return s.detach()
