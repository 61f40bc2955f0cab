"""exec, exec_sync, attach and port-forward: processes and sockets inside a pod, handed back as fds.

exec. The container's supervisor forks the new process (runtime/process/execproc.py): a fresh
child of a single-threaded process, which joins the container's cgroup and namespaces (ipc, uts,
net, cgroup, mnt — and its pid namespace, since the supervisor's children land there), takes the
container's root, confinement and user, and execs. The agent never changes namespace itself. We
send the request over <state>/shim.sock with the process's stdin/stdout/stderr as fds
(SCM_RIGHTS): pipes whose other ends the session keeps. With a tty, the supervisor sends back the
pty master the process made inside the container (its own devpts) instead. The connection then
carries one more message, {"exited": {"exitCode": N}}, when the process ends; waiting for it is
waiting for readability on the socket, so no thread sits blocked per exec.

attach. A container started with tty=True has a pty whose master the supervisor owns; "attach"
turns a connection into a raw byte stream both ways to it (runtime/process/streams.py). Without a
tty, attach hands the supervisor the write ends of two pipes (and the read end of a third, for
stdin): it copies the container's output to them besides the log, and feeds the third to the
container's stdin pipe (created only when the ContainerConfig asked for stdin).

port-forward. A TCP connection to 127.0.0.1:<port> *inside* the pod's network namespace, made by
a fresh fork of the namespace helper that setns()es there (nshelper.py) and passes it back; the
socket keeps talking to the pod's namespace wherever it is used, as the kubelet's streaming
server does with its netns-entering dial.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import select
import socket
import struct
import termios
import time

from nodeagent.cri.api import CRIError, ExecTimeout


def _connect(root: str, cid: str):
    from runtime.process.channel import Channel

    path = os.path.join(root, cid, "shim.sock")
    try:
        return Channel.connect(path, timeout=5)
    except OSError as e:
        raise CRIError(f"container {cid} is not running (its supervisor at {path} does not answer: "
                       f"{e.strerror or e})") from None


class Session:
    """A StreamSession (api.py): the fds of an exec'd or attached process, owned here."""

    def __init__(self, channel, *, stdin: int = -1, stdout: int = -1, stderr: int = -1,
                 tty_fd: int = -1, resize_to=None, waiter=None):
        self.channel = channel            # the supervisor connection that reports the exit
        self.stdin, self.stdout, self.stderr, self.tty_fd = stdin, stdout, stderr, tty_fd
        self._resize_to = resize_to       # (rows, cols) → None; None: ioctl on tty_fd
        self._waiter = waiter             # attach: a coroutine function for the exit code
        self._code: int | None = None
        self.pid: int | None = None       # exec: the process's pid on the host (for a timeout)

    def resize(self, rows: int, cols: int) -> None:
        if self._resize_to is not None:
            self._resize_to(rows, cols)
        elif self.tty_fd >= 0:
            fcntl.ioctl(self.tty_fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    async def wait(self) -> int:
        if self._code is not None:
            return self._code
        if self._waiter is not None:
            self._code = await self._waiter()
            return self._code
        await readable(self.channel.fileno())
        from runtime.process.channel import ChannelClosed
        try:
            message, fds = self.channel.recv()
            for fd in fds:
                os.close(fd)
            self._code = int(message.get("exited", {}).get("exitCode", 255))
        except (ChannelClosed, OSError):
            self._code = 255      # the supervisor went away: the container (and we) died
        return self._code

    def close(self) -> None:
        for name in ("stdin", "stdout", "stderr", "tty_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
                setattr(self, name, -1)
        if self.channel is not None:
            self.channel.close()
            self.channel = None


async def readable(fd: int) -> None:
    """Wait, on the event loop, until fd is readable (a pidfd: until its process has exited)."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    loop.add_reader(fd, lambda: fut.done() or fut.set_result(None))
    try:
        await fut
    finally:
        loop.remove_reader(fd)


def start_exec(root: str, cid: str, cmd: list[str], *, tty: bool, stdin: bool) -> Session:
    """Blocking (a few ms): ask the supervisor to exec `cmd`; returns the session."""
    if not cmd:
        raise CRIError("exec: no command given")
    ch = _connect(root, cid)
    ours: list[int] = []
    theirs: list[int] = []
    try:
        if tty:
            ch.send({"op": "exec", "args": list(cmd), "tty": True})
        else:
            if stdin:
                r, w = os.pipe2(os.O_CLOEXEC)
                theirs.append(r); ours.append(w)
            else:
                theirs.append(os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)); ours.append(-1)
            for _ in range(2):
                r, w = os.pipe2(os.O_CLOEXEC)
                theirs.append(w); ours.append(r)
            ch.send({"op": "exec", "args": list(cmd), "tty": False}, theirs)
        for fd in theirs:
            os.close(fd)
        theirs = []
        reply, fds = ch.recv()
        for fd in fds:
            os.set_inheritable(fd, False)      # (the channel does not receive them close-on-exec)
        if "error" in reply:
            for fd in fds:
                os.close(fd)
            raise CRIError(f"exec {cmd[0]!r} in container {cid}: {reply['error']}")
    except BaseException:
        for fd in theirs + [f for f in ours if f >= 0]:
            os.close(fd)
        ch.close()
        raise
    s = Session(ch, tty_fd=fds[0]) if tty else \
        Session(ch, stdin=ours[0], stdout=ours[1], stderr=ours[2])
    s.pid = reply.get("pid")
    return s


def exec_sync(root: str, cid: str, cmd: list[str], timeout: float) -> tuple[bytes, bytes, int]:
    """Blocking: run `cmd` to its end (or `timeout` seconds: then it is killed and ExecTimeout
    raised); its stdout, stderr and exit code. Output beyond 16 MiB per stream is dropped, as
    the kubelet caps probe output."""
    from runtime.process.channel import ChannelClosed

    s = start_exec(root, cid, cmd, tty=False, stdin=False)
    out, err = bytearray(), bytearray()
    bufs = {s.stdout: out, s.stderr: err}
    deadline = time.monotonic() + timeout if timeout and timeout > 0 else None
    code = None
    try:
        open_fds = [s.stdout, s.stderr]
        while open_fds or code is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                _kill_exec(s)
                raise ExecTimeout(f"command {cmd!r} timed out after {timeout} s")
            watch = open_fds + ([s.channel.fileno()] if code is None else [])
            ready, _, _ = select.select(watch, [], [], left)
            for fd in ready:
                if fd == s.channel.fileno():
                    try:
                        message, fds = s.channel.recv()
                        for f in fds:
                            os.close(f)
                        code = int(message.get("exited", {}).get("exitCode", 255))
                    except (ChannelClosed, OSError):
                        code = 255
                    continue
                data = os.read(fd, 65536)
                if not data:
                    open_fds.remove(fd)
                elif len(bufs[fd]) < 16 << 20:
                    bufs[fd] += data
        return bytes(out), bytes(err), code
    finally:
        s.close()


def _kill_exec(s: Session) -> None:
    """The exec'd process does not die when our connection closes. Its pid came in the reply;
    kill it through a pidfd (a pidfd, once open, never names a reused pid)."""
    pid = s.pid
    if pid:
        try:
            fd = os.pidfd_open(pid)
            try:
                import signal
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            finally:
                os.close(fd)
        except OSError:
            pass


def attach(root: str, cid: str, tty: bool, stdin: bool, waiter) -> Session:
    """Blocking: attach to container `cid`'s stdio. With a tty: the pty's bytes both ways over
    one socket (tty_fd). Without: pipes — the supervisor copies the container's stdout and
    stderr to ours from now on (what was written before is in the log), and, if the container
    was created with stdin, what we write to `stdin` goes to the program. `waiter`: a coroutine
    function giving the container's exit code (Session.wait)."""
    ch = _connect(root, cid)
    ours: list[int] = []
    theirs: list[int] = []
    try:
        if tty:
            ch.send({"op": "attach"})
        else:
            for _ in range(2):
                r, w = os.pipe2(os.O_CLOEXEC)
                ours.append(r); theirs.append(w)
            if stdin:
                r, w = os.pipe2(os.O_CLOEXEC)
                ours.append(w); theirs.append(r)
            ch.send({"op": "attach", "stdin": stdin}, theirs)
        for fd in theirs:
            os.close(fd)
        theirs = []
        reply, fds = ch.recv()
        for fd in fds:
            os.close(fd)
        if "error" in reply:
            raise CRIError(f"attach to container {cid}: {reply['error']}")
    except BaseException:
        for fd in ours + theirs:
            os.close(fd)
        ch.close()
        raise

    if not tty:
        ch.close()
        return Session(None, stdout=ours[0], stderr=ours[1], stdin=ours[2] if stdin else -1,
                       waiter=waiter)

    def resize(rows: int, cols: int) -> None:
        c = _connect(root, cid)
        try:
            c.send({"op": "resize", "rows": rows, "cols": cols})
            c.recv()
        except OSError:
            pass
        finally:
            c.close()

    return Session(None, tty_fd=ch.sock.detach(), resize_to=resize, waiter=waiter)


def port_forward(helper, netns: str | None, port: int) -> int:
    """Blocking: a socket connected to 127.0.0.1:`port` in `netns` (None: our own namespace);
    `helper`: the namespace helper's Client (nshelper.py)."""
    if not 0 < port < 65536:
        raise CRIError(f"port-forward: port {port} is out of range")
    if netns is None:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError as e:
            raise CRIError(f"port-forward to port {port}: {e.strerror or e}") from None
        s.settimeout(None)
        return s.detach()
    reply, fds = helper.request({"op": "connect", "netns": netns, "port": port})
    if not reply.get("ok") or not fds:
        for fd in fds:
            os.close(fd)
        raise CRIError(f"port-forward: {reply.get('error', 'no socket came back')}")
    return fds[0]
