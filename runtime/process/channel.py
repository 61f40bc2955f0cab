"""Messages between the runtime's processes: JSON objects over SOCK_SEQPACKET unix sockets.

Who talks to whom:

    creator (CLI/agent) ──socketpair──► supervisor ("shim")  ──socketpair──► container init
    any client ─────────connect──────► <state dir>/shim.sock (start, exec, wait, attach, resize)

SOCK_SEQPACKET keeps message boundaries (one send = one recv, like a datagram) on a reliable
connection, and tells the reader when the other end is gone (recv returns b"" — EOF). So a message
is simply one JSON object per packet; file descriptors ride along as SCM_RIGHTS ancillary data
(how a client hands its stdin/stdout/stderr to an exec'd process, and how a pty master travels).

The container's init holds its end with O_CLOEXEC: when its execve succeeds the kernel closes it,
and the supervisor sees EOF — "the program is running" — without init having to say anything.

Who owns what: a Channel owns its socket; received fds belong to the receiver, who must close them.
"""

from __future__ import annotations

import json
import os
import socket
from contextlib import contextmanager

MAX_MESSAGE = 1 << 20
MAX_FDS = 8


class ChannelClosed(EOFError):
    """The other end closed the connection (or exited)."""


class Channel:
    def __init__(self, sock: socket.socket):
        self.sock = sock

    @classmethod
    def pair(cls) -> tuple["Channel", "Channel"]:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        return cls(a), cls(b)

    @classmethod
    def connect(cls, path: str, timeout: float | None = None) -> "Channel":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            sock.settimeout(timeout)
            with short_path(path) as reachable:
                sock.connect(reachable)
            sock.settimeout(None)
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, obj: dict, fds: list[int] | tuple[int, ...] = ()) -> None:
        data = json.dumps(obj, separators=(",", ":")).encode()
        if fds:
            socket.send_fds(self.sock, [data], list(fds))
        else:
            self.sock.send(data)

    def recv(self) -> tuple[dict, list[int]]:
        """The next message and any fds that came with it (ours to close). ChannelClosed at EOF."""
        data, fds, _flags, _addr = socket.recv_fds(self.sock, MAX_MESSAGE, MAX_FDS)
        if not data:
            for fd in fds:
                os.close(fd)
            raise ChannelClosed()
        return json.loads(data), fds

    def close(self) -> None:
        self.sock.close()


@contextmanager
def short_path(path: str):
    """A unix socket path must fit in 108 bytes. A longer one is reached through its directory's
    fd, held open for the duration: /proc/self/fd/N/name is short and names the same file."""
    if len(path.encode()) < 100:
        yield path
        return
    directory, name = os.path.split(path)
    fd = os.open(directory, os.O_PATH | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{name}"
    finally:
        os.close(fd)


def listen(path: str) -> socket.socket:
    """A listening SEQPACKET socket at `path`, readable by root only."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        old = os.umask(0o077)
        try:
            with short_path(path) as reachable:
                sock.bind(reachable)
        finally:
            os.umask(old)
        sock.listen(16)
    except BaseException:
        sock.close()
        raise
    return sock
