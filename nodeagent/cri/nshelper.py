"""The sandbox's namespace helper: a single-threaded process that makes a pod's namespaces (or
connects a socket inside one), each request in a fresh fork of itself.

Why a separate process: unshare(2) and setns(2) change the *calling thread's* namespaces (for the
mount namespace, the whole process's). The agent is an asyncio program with threads; a thread
that changed network namespace and was then given other work would leak that work into the pod
(the rule of this project: setns/unshare only in a fresh single-threaded process). So the agent
starts `python -m nodeagent.cri.nshelper --serve FD` once (Client below) and sends it requests
over a socketpair; the helper forks a child per request (~1 ms, versus ~40 ms for a Python start),
the child does the namespace work, replies and exits, and the helper itself never changes
namespace. It imports only the standard library and runtime.sys. It exits when the agent closes
its end (EOF), so it never outlives the agent by more than a request. (network/nshelper.py is the
same design for CNI's netlink sockets; it makes network namespaces only.)

`python -m nodeagent.cri.nshelper REQUEST` does one request in-process and exits (for debugging).

Requests (one JSON object per message; as argv[1] for a one-off run):

    {"op": "pin", "dir": D, "types": ["net", "ipc", "uts"], "hostname": H, "sysctls": {...}}
        unshare(2) new namespaces of those types, set the hostname in the new uts namespace,
        write the pod's namespaced sysctls (net.*, kernel.shm*, ... — as seen from inside), and
        bind-mount /proc/self/ns/<type> onto D/<type>. A bind mount of an nsfs file keeps the
        namespace alive after this process exits, with a path the containers join by
        (`ip netns add` does the same for net). This is CRI-O's "pinns", in Python.
        On failure, whatever was pinned is unmounted again and the files removed.
    {"op": "pause", "dir": D}
        a pod's shared pid namespace (shareProcessNamespace): unshare(CLONE_NEWPID), fork its
        first process — pid 1, "pause", which only reaps orphans and ends on SIGTERM/SIGINT — and
        bind-mount its /proc/<pid>/ns/pid onto D/pid for the containers to join. Unlike the
        other namespaces, a pid namespace cannot be held by a bind mount alone: once its pid 1
        is gone no process can be created in it (fork fails with ENOMEM), so the pause process
        *is* the holder, as in containerd's and CRI-O's pods. Reply: {"ok": true, "pid": P}
        (P as the host sees it; it is reparented to init when this request's child exits).
    {"op": "connect", "netns": P, "port": N}
        setns(2) into P, connect a TCP socket to 127.0.0.1:N inside the pod, and pass it back
        (SCM_RIGHTS) — what port-forward needs. The socket keeps talking to the pod's namespace
        wherever it travels.

Replies: {"ok": true} (+ the socket for connect), or {"ok": false, "error": "<step>: <why>"}.

May import: the standard library and runtime.sys only (it must start fast).
"""

from __future__ import annotations

import json
import os
import socket
import sys

TYPES = {"net": "CLONE_NEWNET", "ipc": "CLONE_NEWIPC", "uts": "CLONE_NEWUTS"}


def pin(req: dict, sys_) -> list[int]:
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
        raise Failed(f"{step}: {e}") from None
    return []


def _pause_main(ready: int) -> None:
    """pid 1 of a pod's pid namespace: reap whatever is reparented here, end on TERM or INT.
    Signals are taken synchronously (sigwait), so no SIGCHLD is lost between two waits."""
    import signal

    os.setsid()
    try:
        with open("/proc/self/comm", "w") as f:
            f.write("pause")          # what `ps` shows when it has no argv to show
    except OSError:
        pass
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, ready)
    os.closerange(ready + 1, os.sysconf("SC_OPEN_MAX"))
    wanted = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    os.write(ready, b"1")
    os.close(ready)
    while True:
        if signal.sigwait(wanted) != signal.SIGCHLD:
            return
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass


def pause(req: dict, sys_) -> dict:
    from runtime.sys.consts import CLONE_NEWPID, MS_BIND

    target = os.path.join(req["dir"], "pid")
    try:
        sys_.unshare(CLONE_NEWPID)    # our next child is born in it, as its pid 1
    except OSError as e:
        raise Failed(f"unshare the pid namespace: {e}") from None
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            _pause_main(w)
        finally:
            os._exit(0)
    os.close(w)
    try:
        if os.read(r, 1) != b"1":
            raise Failed("the pause process died before it was ready")
        os.close(os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))
        try:
            sys_.mount(f"/proc/{pid}/ns/pid", target, None, MS_BIND)
        except OSError as e:
            os.unlink(target)
            raise Failed(f"pin the pid namespace: {e}") from None
    except BaseException:
        os.kill(pid, 9)
        raise
    finally:
        os.close(r)
    return {"pid": pid}


def connect(req: dict, sys_) -> list[int]:
    from runtime.sys.consts import CLONE_NEWNET

    step = "enter the pod's network namespace"
    try:
        if req.get("netns"):
            fd = os.open(req["netns"], os.O_RDONLY | os.O_CLOEXEC)
            try:
                sys_.setns(fd, CLONE_NEWNET)
            finally:
                os.close(fd)
        step = f"connect to 127.0.0.1:{req['port']} in the pod"
        s = socket.create_connection(("127.0.0.1", int(req["port"])), timeout=10)
    except OSError as e:
        raise Failed(f"{step}: {e.strerror or e}") from None
    s.settimeout(None)
    return [s.detach()]


class Failed(Exception):
    pass


def handle(req: dict, sys_) -> tuple[dict, list[int]]:
    op = {"pin": pin, "connect": connect, "pause": pause}.get(req.get("op"))
    if op is None:
        return {"ok": False, "error": f"unknown request {req.get('op')!r}"}, []
    try:
        got = op(req, sys_)
    except Failed as e:
        return {"ok": False, "error": str(e)}, []
    if isinstance(got, dict):           # a reply with values (pause), no fds
        return {"ok": True, **got}, []
    return {"ok": True}, got


def serve(sock: socket.socket) -> None:
    """One request at a time, each in a fresh child (which may change namespaces and then dies)."""
    from runtime.sys import real

    sys_ = real()
    while True:
        data = sock.recv(MAX_MESSAGE)
        if not data:
            return                      # the agent closed its end (or died)
        req = json.loads(data)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                reply, fds = handle(req, sys_)
                socket.send_fds(sock, [json.dumps(reply).encode()], fds)
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            sock.send(json.dumps({"ok": False, "error": f"helper child died ({status:#x})"}).encode())


MAX_MESSAGE = 64 * 1024


class Client:
    """The agent's side: starts the helper on first use (and again if it died); thread-safe, one
    request at a time. `request` returns (reply, fds); the fds are the caller's to close."""

    def __init__(self):
        import threading
        self._lock = threading.Lock()
        self._proc = None
        self._sock: socket.socket | None = None

    def _start(self) -> None:
        import subprocess
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "nodeagent.cri.nshelper", "--serve", str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, close_fds=True)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._sock = ours

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            if self._proc is not None:
                self._proc.wait()
                self._proc = None

    def request(self, req: dict) -> tuple[dict, list[int]]:
        with self._lock:
            for _ in (1, 2):             # once more if the helper had died since the last request
                if self._proc is None or self._proc.poll() is not None:
                    if self._sock is not None:
                        self._sock.close()
                    if self._proc is not None:
                        self._proc.wait()
                    self._start()
                try:
                    self._sock.send(json.dumps(req).encode())
                    data, fds, _, _ = socket.recv_fds(self._sock, MAX_MESSAGE, 4,
                                                      socket.MSG_CMSG_CLOEXEC)
                except (BrokenPipeError, ConnectionResetError):
                    data, fds = b"", []
                if data:
                    return json.loads(data), fds
                self._proc.wait()
            return {"ok": False, "error": "the namespace helper exited without answering"}, []


def main(argv: list[str]) -> int:
    from runtime.sys import real

    if argv[1:2] == ["--serve"]:
        serve(socket.socket(fileno=int(argv[2])))
        return 0
    reply, fds = handle(json.loads(argv[1]), real())
    for fd in fds:
        os.close(fd)
    if not reply["ok"]:
        print(reply["error"], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
