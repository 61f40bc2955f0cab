"""The sandbox's namespace helper: a fresh, single-threaded process that makes a pod's namespaces
(or connects a socket inside one) and exits.

Why a separate process: unshare(2) and setns(2) change the *calling thread's* namespaces (for the
mount namespace, the whole process's). The agent is an asyncio program with threads; a thread
that changed network namespace and was then given other work would leak that work into the pod
(the rule of this project: setns/unshare only in a fresh single-threaded process). So the agent
runs `python -m nodeagent.cri.nshelper REQUEST` and this process does the namespace work. It
imports only the standard library and runtime.sys, so it costs a Python start (~40 ms here), paid
once per pod.

Requests (one JSON object as argv[1]):

    {"op": "pin", "dir": D, "types": ["net", "ipc", "uts"], "hostname": H, "sysctls": {...}}
        unshare(2) new namespaces of those types, set the hostname in the new uts namespace,
        write the pod's namespaced sysctls (net.*, kernel.shm*, ... — as seen from inside), and
        bind-mount /proc/self/ns/<type> onto D/<type>. A bind mount of an nsfs file keeps the
        namespace alive after this process exits, with a path the containers join by
        (`ip netns add` does the same for net). This is CRI-O's "pinns", in Python.
        On failure, whatever was pinned is unmounted again and the files removed.
    {"op": "connect", "netns": P, "port": N, "fd": F}   (F: a unix socket to send the result on)
        setns(2) into P, connect a TCP socket to 127.0.0.1:N inside the pod, and pass it back
        (SCM_RIGHTS) — what port-forward needs. The socket keeps talking to the pod's namespace
        wherever it travels.

Exit status 0 and nothing on stderr on success; otherwise one line on stderr naming the step.

May import: the standard library and runtime.sys only (it must start fast).
"""

from __future__ import annotations

import json
import os
import socket
import sys

TYPES = {"net": "CLONE_NEWNET", "ipc": "CLONE_NEWIPC", "uts": "CLONE_NEWUTS"}


def pin(req: dict, sys_) -> None:
    from runtime.sys import consts
    from runtime.sys.consts import MNT_DETACH, MS_BIND

    directory, types = req["dir"], list(req["types"])
    flags = 0
    for t in types:
        flags |= getattr(consts, TYPES[t])
    step = "unshare"
    pinned: list[str] = []
    try:
        if flags:
            sys_.unshare(flags)
        if req.get("hostname") and "uts" in types:
            step = f"set the hostname to {req['hostname']!r}"
            sys_.sethostname(req["hostname"])
        for name, value in (req.get("sysctls") or {}).items():
            step = f"sysctl {name}={value}"
            with open("/proc/sys/" + name.replace(".", "/"), "w") as f:
                f.write(str(value))
        for t in types:
            step = f"pin the {t} namespace"
            target = os.path.join(directory, t)
            os.close(os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))
            try:
                sys_.mount(f"/proc/self/ns/{t}", target, None, MS_BIND)
            except BaseException:
                os.unlink(target)
                raise
            pinned.append(target)
    except (OSError, ValueError) as e:
        for target in pinned:
            try:
                sys_.umount2(target, MNT_DETACH)
                os.unlink(target)
            except OSError:
                pass
        raise SystemExit(f"{step}: {e}") from None


def connect(req: dict, sys_) -> None:
    from runtime.sys.consts import CLONE_NEWNET

    reply = socket.socket(fileno=int(req["fd"]))
    if req.get("netns"):
        fd = os.open(req["netns"], os.O_RDONLY | os.O_CLOEXEC)
        try:
            sys_.setns(fd, CLONE_NEWNET)
        finally:
            os.close(fd)
    s = socket.create_connection(("127.0.0.1", int(req["port"])), timeout=10)
    s.settimeout(None)
    socket.send_fds(reply, [b"ok"], [s.fileno()])


def main(argv: list[str]) -> int:
    from runtime.sys import real

    req = json.loads(argv[1])
    try:
        if req["op"] == "pin":
            pin(req, real())
        elif req["op"] == "connect":
            connect(req, real())
        else:
            raise SystemExit(f"unknown request {req['op']!r}")
    except OSError as e:
        print(f"{req['op']}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
