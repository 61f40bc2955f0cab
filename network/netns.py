"""Network namespace handles (`/run/netns/<name>`-style bind mounts) and safe access to them.

A network namespace lives as long as something refers to it: a process inside it, an open fd to
/proc/<pid>/ns/net, or a bind mount of that file. Container runtimes and `ip netns add` use the
bind mount: the namespace then has a *path* (`/run/netns/pod1`) that CNI plugins receive in
CNI_NETNS, and it survives the process that created it. Deleting the handle is an unmount plus an
unlink; the namespace (and every interface in it, veth ends included) goes when the last reference
does.

All namespace files live on one pseudo-filesystem, nsfs: `stat` gives the same st_dev for all of
them and an st_ino that *is* the namespace's identity (`ls -i /proc/self/ns/net`). That is how we
tell a live handle from a stale empty file, and "the pod's namespace" from "our own".

Entering a namespace is done only by the helper described in network/nshelper.py. Two ways to reach
it, one interface (`NetnsAccess`):
  HelperAccess  the agent: a long-lived helper process, one fork per request (threads are fine)
  ForkAccess    a standalone, single-threaded CNI plugin: fork a child directly from ourselves

May import: the standard library and runtime.sys.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Protocol

from network import nshelper
from network.changes import Change
from network.errors import NetnsGone, NetworkError
from runtime.sys import Syscalls, SyscallError
from runtime.sys.consts import MNT_DETACH, MS_BIND, MS_REC, MS_SHARED

DEFAULT_NETNS_DIR = Path("/run/netns")

# errnos that mean "this path is not (any more) a network namespace"
_GONE = (errno.ENOENT, errno.EINVAL)


class NetnsAccess(Protocol):
    def netlink_socket(self, netns_path: str) -> int:
        """A NETLINK_ROUTE socket fd created inside the namespace at `netns_path`. The caller owns it.
        Raises NetnsGone when the path is not a live network namespace."""

    def create(self, path: str) -> None:
        """Create a new network namespace bound at `path` (which must not exist)."""


def _check_reply(reply: dict, what: str, fds: list[int], gone_ok: bool) -> list[int]:
    if reply.get("ok"):
        return fds
    for fd in fds:
        os.close(fd)
    err = reply.get("errno") or None
    if gone_ok and err in _GONE:
        raise NetnsGone(what, reply.get("error", ""), err)
    raise NetworkError(what, reply.get("error", "failed"), err)


class ForkAccess:
    """Fork the helper child from this very process. Only for single-threaded processes (a CNI
    plugin run as its own executable): forking a threaded process into Python code is unsafe."""

    def __init__(self, sys_: Syscalls):
        self._sys = sys_

    def _ask(self, req: dict) -> tuple[dict, list[int]]:
        if threading.active_count() != 1:
            raise NetworkError("enter a network namespace",
                               "ForkAccess in a threaded process; use HelperAccess")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with ours, theirs:
            nshelper.run_in_child(req, theirs, self._sys)
            msg, fds, _, _ = socket.recv_fds(ours, nshelper.MAX_MESSAGE, 16, socket.MSG_CMSG_CLOEXEC)
        return json.loads(msg), fds

    def netlink_socket(self, netns_path: str) -> int:
        reply, fds = self._ask({"op": "open", "netns": netns_path})
        return _check_reply(reply, f"open network namespace {netns_path}", fds, gone_ok=True)[0]

    def create(self, path: str) -> None:
        reply, fds = self._ask({"op": "create", "path": path})
        _check_reply(reply, f"create network namespace {path}", fds, gone_ok=False)


class NetnsHelper:
    """The client side of the long-lived helper process (network/nshelper.py).

    Thread-safe: requests are serialized by a lock (each takes a fork, ~1–2 ms). The helper is
    started on first use and restarted if it died; `close()` ends it (it also ends by itself when
    this process exits, on EOF of the control socket)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()   # guards _proc and _sock, and one request/reply at a time
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None

    def _start(self) -> None:
        self._stop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "network.nshelper", str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, close_fds=True)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()  # the helper has its copy; keeping ours would hide its EOF
        self._sock = ours

    def _stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def request(self, req: dict) -> tuple[dict, list[int]]:
        with self._lock:
            for attempt in (1, 2):  # one restart if the helper had died since the last request
                if self._proc is None or self._proc.poll() is not None:
                    self._start()
                assert self._sock is not None
                try:
                    self._sock.send(json.dumps(req).encode())
                    msg, fds, _, _ = socket.recv_fds(self._sock, nshelper.MAX_MESSAGE, 16,
                                                     socket.MSG_CMSG_CLOEXEC)
                except (BrokenPipeError, ConnectionResetError):
                    msg, fds = b"", []
                if msg:
                    return json.loads(msg), fds
                self._stop()
            raise NetworkError("netns helper", "the helper process exited without answering")

    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def close(self) -> None:
        with self._lock:
            self._stop()


class HelperAccess:
    """NetnsAccess through a NetnsHelper process: what the (threaded) agent uses."""

    def __init__(self, helper: NetnsHelper | None = None):
        self.helper = helper or NetnsHelper()

    def netlink_socket(self, netns_path: str) -> int:
        reply, fds = self.helper.request({"op": "open", "netns": netns_path})
        return _check_reply(reply, f"open network namespace {netns_path}", fds, gone_ok=True)[0]

    def create(self, path: str) -> None:
        reply, fds = self.helper.request({"op": "create", "path": path})
        _check_reply(reply, f"create network namespace {path}", fds, gone_ok=False)

    def close(self) -> None:
        self.helper.close()


# --- handles -------------------------------------------------------------------------------------

def namespace_id(path: str | os.PathLike) -> int | None:
    """The namespace's identity (nsfs inode) if `path` is a live namespace handle, else None."""
    try:
        st = os.stat(path)
        nsfs = os.stat("/proc/self/ns/net")
    except FileNotFoundError:
        return None
    return st.st_ino if st.st_dev == nsfs.st_dev else None


def is_own_netns(path: str | os.PathLike) -> bool:
    """Is `path` the network namespace this process is in? (CNI forbids configuring that one.)"""
    ident = namespace_id(path)
    return ident is not None and ident == os.stat("/proc/self/ns/net").st_ino


def prepare_netns_dir(directory: Path, sys_: Syscalls) -> list[Change]:
    """Make `directory` a shared mount point, as `ip netns add` does for /run/netns.

    Why: a handle is a mount. A mount namespace copied from ours *after* the handle was made (a
    container's) holds its own copy of that mount; with private propagation our later unmount would
    not reach that copy and the namespace would live on unseen. A shared mount point propagates
    the unmount to every copy."""
    changes: list[Change] = []
    directory.mkdir(parents=True, exist_ok=True)
    try:
        sys_.mount(None, str(directory), None, MS_SHARED | MS_REC)
    except SyscallError as e:
        if e.errno != errno.EINVAL:  # EINVAL: not a mount point yet; make it one and retry
            raise NetworkError(f"make {directory} a shared mount", str(e), e.errno) from e
        sys_.mount(str(directory), str(directory), None, MS_BIND | MS_REC)
        sys_.mount(None, str(directory), None, MS_SHARED | MS_REC)
        changes.append(Change("set", f"{directory} as a shared bind mount of itself",
                              f"mount --bind {directory} {directory} && mount --make-rshared {directory}",
                              "netns handles are mounts; shared propagation lets their unmount "
                              "reach copies in other mount namespaces"))
    return changes


def create_netns(path: str | os.PathLike, access: NetnsAccess, sys_: Syscalls) -> list[Change]:
    """Create a network namespace with a handle at `path` (idempotent: a live handle is kept)."""
    path = Path(path)
    if namespace_id(path) is not None:
        return []
    changes = prepare_netns_dir(path.parent, sys_)
    if path.exists():  # a stale, empty file left by an interrupted delete: not a namespace
        path.unlink()
    access.create(str(path))
    changes.append(Change("create", f"network namespace {path}", f"ip netns add {path.name}",
                          "a pod's network namespace, held by a bind mount so it outlives any process"))
    return changes


def delete_netns(path: str | os.PathLike, sys_: Syscalls) -> list[Change]:
    """Remove the handle at `path`: unmount, then unlink. Idempotent; missing is fine."""
    path = Path(path)
    changes: list[Change] = []
    if namespace_id(path) is not None:
        try:
            sys_.umount2(str(path), MNT_DETACH)
        except SyscallError as e:
            if e.errno not in (errno.EINVAL, errno.ENOENT):
                raise NetworkError(f"unmount network namespace {path}", str(e), e.errno) from e
        changes.append(Change("delete", f"network namespace {path}", f"ip netns delete {path.name}",
                              "the namespace and every interface in it go with the last reference"))
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    return changes
