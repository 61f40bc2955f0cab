"""The netns helper: the only code in nodeagent that enters a pod's network namespace.

Why a helper at all
-------------------
A netlink socket talks to the network namespace it was *created* in, forever. So to configure a
pod's eth0 we need a socket created inside the pod's namespace — and only a task that is inside it
can create one. setns(2) moves the calling *thread* into another network namespace; in a threaded
program (the agent: asyncio, worker threads, aiohttp) that is a trap: the next thing scheduled on
that thread runs in the wrong namespace, and a forgotten setns-back leaks pods' traffic into the
node. The rule of this project is therefore: setns/unshare only in a fresh, single-threaded process.

How it works
------------
For every request we fork a child from a single-threaded process (this helper, or a standalone CNI
plugin that is itself single-threaded). The child opens the namespace file, setns()es into it,
creates a NETLINK_ROUTE socket there, and passes the socket back over a unix socket as an fd
(SCM_RIGHTS) — then exits. The caller keeps the socket and talks to the pod's namespace through it
from wherever it likes; it never changed namespace itself. The same trick creates namespace handles:
the child unshare()s a new network namespace and bind-mounts /proc/self/ns/net onto a file, which
keeps the namespace alive after the child is gone (what `ip netns add` does).

Forking per request (rather than setns-and-back in a long-lived process) means the helper itself
never leaves its own namespace, so no half-finished request can leave it somewhere wrong.

The agent starts one helper (network/netns.py, `NetnsHelper`) and keeps it: it imports only the
standard library and runtime.sys, starts in a few tens of milliseconds once, and each request then
costs a fork (~1–2 ms) instead of a Python start (~15–30 ms here). It exits when the agent closes
its end of the control socket.

Protocol: one JSON object per SOCK_SEQPACKET message, answered by one JSON object, with fds attached
when the request asked for them:
    {"op": "open", "netns": PATH}          → {"ok": true} + [netlink socket fd]
    {"op": "create", "path": PATH}         → {"ok": true}     (new netns bound at PATH)
    {"op": "ping"}                         → {"ok": true, "pid": N}
    failure                                → {"ok": false, "errno": N, "error": "..."}

May import: the standard library and runtime.sys only (it must start fast).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

from runtime.sys import Syscalls
from runtime.sys.consts import CLONE_NEWNET, MS_BIND

MAX_MESSAGE = 64 * 1024
NETLINK_ROUTE = 0

# Exit status of a child that sent its reply; anything else means the parent must answer for it.
_REPLIED = 0


def do_request(req: dict, sys_: Syscalls) -> tuple[dict, list[int]]:
    """Carry out one request *in the calling process* (a forked child: it may change namespace).

    Returns the reply and the fds to pass back; the fds are owned by the caller, who sends and
    then forgets them (the child exits right after)."""
    op = req.get("op")
    if op == "open":
        return _netlink_socket_in(str(req["netns"]), sys_)
    if op == "create":
        return _create_netns(str(req["path"]), sys_)
    if op == "ping":
        return {"ok": True, "pid": os.getpid()}, []
    raise ValueError(f"unknown request {op!r}")


def _netlink_socket_in(netns_path: str, sys_: Syscalls) -> tuple[dict, list[int]]:
    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        sys_.setns(fd, CLONE_NEWNET)  # CLONE_NEWNET: the kernel refuses a file that is not a netns
    finally:
        os.close(fd)
    # SOCK_DGRAM (not RAW): pyroute2's asyncio transport insists on a datagram socket.
    nl = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
    return {"ok": True}, [nl.detach()]


def _create_netns(path: str, sys_: Syscalls) -> tuple[dict, list[int]]:
    # The mount point must exist as a file; O_EXCL: never adopt somebody else's handle.
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))
    try:
        sys_.unshare(CLONE_NEWNET)
        # Binding the nsfs file keeps the namespace alive once this child exits.
        sys_.mount("/proc/self/ns/net", path, None, MS_BIND)
    except BaseException:
        os.unlink(path)
        raise
    return {"ok": True}, []


def error_reply(e: BaseException) -> dict:
    return {"ok": False, "errno": getattr(e, "errno", None) or 0, "error": str(e)}


def run_in_child(req: dict, reply_sock: socket.socket, sys_: Syscalls) -> None:
    """Fork a child that does `req` and sends the reply on `reply_sock`; wait for it.

    Only call this from a single-threaded process: the child runs Python code after fork()."""
    pid = os.fork()
    if pid == 0:  # the child: do it, reply, and leave without running any cleanup handlers
        status = 1
        try:
            try:
                reply, fds = do_request(req, sys_)
            except (OSError, ValueError, KeyError) as e:
                reply, fds = error_reply(e), []
            socket.send_fds(reply_sock, [json.dumps(reply).encode()], fds)
            status = _REPLIED
        finally:
            os._exit(status)
    _, wstatus = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(wstatus) != _REPLIED:
        reply_sock.send(json.dumps({"ok": False, "errno": 0,
                                    "error": f"netns helper child died ({wstatus:#x})"}).encode())


def serve(ctl: socket.socket, sys_: Syscalls) -> None:
    """Answer requests on `ctl` one at a time until the other end closes it."""
    while True:
        try:
            data = ctl.recv(MAX_MESSAGE)
        except InterruptedError:
            continue
        if not data:
            return  # the agent closed its end (or died): nothing left to serve
        try:
            req = json.loads(data)
        except ValueError as e:
            ctl.send(json.dumps(error_reply(e)).encode())
            continue
        run_in_child(req, ctl, sys_)


def main(argv: list[str] | None = None) -> int:
    from runtime.sys import real

    args = sys.argv[1:] if argv is None else argv
    # Ctrl-C on the agent's terminal reaches the whole process group; the helper ends on EOF instead,
    # after the agent had its chance to finish what it was doing.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ctl = socket.socket(fileno=int(args[0]))
    serve(ctl, real())
    return 0


if __name__ == "__main__":
    sys.exit(main())
