"""The zygote: a pre-imported, single-threaded process that forks container creators on request.

Two problems, one answer (ARCHITECTURE.md, "Why a per-pod sandbox process"):

1. Starting Python is cheap; importing the runtime is not (tens of milliseconds of module loading
   on these machines — more than the kernel needs to build the container). A process that has
   imported everything once can fork a ready-to-run copy of itself in about a millisecond.
2. The agent is an asyncio program with threads, and a threaded process must never fork into
   Python code (the child inherits locks held by threads that do not exist in it). The zygote is
   single-threaded by construction, so forking it is safe.

So: `nodeagent runtime zygote` listens on <root>/zygote.sock. Each request is taken by a *worker*
(a copy with everything imported, forked and warmed up before the request came: spares.py), which
creates the container as the CLI would (create.py) and then, instead of forking a supervisor, *becomes* the container's supervisor
(create_and_supervise): one fork fewer, and a forked process pays for every page it writes
first (copy-on-write: ~2.5 µs a page here, thousands of pages for a Python process's first
steps), so the fewer fresh processes a start goes through, the faster it is. The client's
connection is its channel to the supervisor from then on: it starts the container and waits on
it as if it had created the container itself. The client's own stdin/stdout/stderr travel with
the request, so a foreground container still writes straight to the user's terminal.

A zygote that serves creates only (the node's) trades those first-write copies the other way: a
supervisor lives as long as its container, so the pages it keeps matter more than the ~ms they
cost once. Its spares stay cold and each worker has a child prepare the container and becomes a
*lean* supervisor of the plan it is handed (see "lean supervisors" below): 2.8 MiB of private
pages per container instead of 4.3.

A supervisor is thus the zygote's child. The zygote ignores SIGCHLD, so the kernel reaps its
children itself and the zygote never waits for one; if the zygote is stopped, its supervisors are
reparented and their containers run on.

That still leaves each CLI call paying for its own imports of the client side. So a zygote can
also be a *command server* (Mercurial's chg): <root>/command.sock takes a whole command line —
argv, environment, working directory, umask and stdio fds — and a worker runs the CLI's code for
it, in-process, while the client (nodeagent/cmdclient.py, nothing imported beyond builtins) only
forwards signals and waits for the exit status. cmdwire.py is that wire format, cmdserver.py what
a worker does with it. The spare workers wait on both sockets; the zygote's own single-threaded
loop only forks new ones.

The zygote runs from a sealed interpreter (sealed.py): every worker, supervisor, container init
and exec'd process it forks has a /proc/self/exe the container cannot change (CVE-2019-5736),
paid for once, when the zygote starts, never per container.

If no zygote is running (no socket, or nobody answers), clients simply do the work in their own
process: the zygote makes starts faster, never necessary.

The client side (connect, request_create) is client.py, re-exported here; the server imports the
runtime only when it starts serving.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Callable

import localfs
from runtime.process.channel import Channel, ChannelClosed, listen
from runtime.zygote.client import (PID_FILE, SOCKET_NAME, connect, pid_file_text,  # noqa: F401
                                   request_create, running, stop)

# --- server -------------------------------------------------------------------------------------------
SPARES = 2  # workers kept forked and warm; a CLI command through command.sock uses two at once


def serve(root: str, ready_fd: int | None = None,
          command: Callable[[list[str]], int] | None = None,
          warm_up: Callable[[], None] | None = None) -> None:
    """Serve requests for state root `root` until killed. Writes <root>/zygote.pid; if `ready_fd`
    is given, writes one byte to it once the sockets listen (for --detach) and closes it.

    With `command` (a CLI's in-process entry point: the arguments after the program name → exit
    status), also serve <root>/command.sock: whole commands, run by a worker on behalf of a thin
    client (cmdserver.py). The caller imports what its commands need before calling this, and may
    give a `warm_up` of its own for the spare workers (spares.py), run after the runtime's."""
    import gc

    from runtime.errors import ContainerError
    from runtime.process import sealed

    # Every worker becomes a supervisor, whose children enter containers: they must all run from
    # a sealed interpreter (sealed.py, CVE-2019-5736). A fork inherits it, so it is checked once.
    if not sealed.is_sealed():
        raise ContainerError("a zygote must run from a sealed interpreter (see "
                             "runtime/process/sealed.py): start it with start_detached, or call "
                             "sealed.ensure_sealed() before serve")
    from runtime.zygote import cmdserver, cmdwire  # noqa: F401 - cmdserver: for the workers
    from runtime.zygote.spares import SparePool
    # pickle: a lean worker unpickles its plan (see _work_lean). A module imported by a worker
    # costs it ~1.7 MiB of private pages for its whole life as a supervisor (measured); imported
    # here, it is shared.
    import pickle  # noqa: F401
    # Everything a worker needs, imported once here so that no worker ever imports anything.
    import runtime.container.create, runtime.errors, runtime.spec.bundle  # noqa: E401,F401
    from runtime.container.warmup import warm_up as warm_up_create
    from runtime.spec import defaults, runtime_default
    import runtime.cgroups.v1, runtime.cgroups.v2, runtime.confine, runtime.explain  # noqa: E401,F401
    import runtime.process.execproc, runtime.process.shim, runtime.rootfs  # noqa: E401,F401
    import runtime.sys.linux, runtime.sys.seccomp  # noqa: F401
    from runtime.cgroups.layout import current
    from runtime.confine.seccomp import compile_profile

    current()  # the host's cgroup layout, detected once for every worker
    # Warm the seccomp cache with RuntimeDefault for the default capabilities (the common case).
    compile_profile(runtime_default.runtime_default_seccomp(defaults.default_capabilities().bounding))
    gc.freeze()  # the imported modules stay shared with every worker (copy-on-write, untouched)

    os.makedirs(root, mode=0o711, exist_ok=True)
    # One zygote per root: taking over the socket path of a live one would leave it running for
    # nobody (no client can reach it; `stop` would find only us).
    other = running(root)
    if other is not None and other != os.getpid():
        raise ContainerError(f"a zygote (pid {other}) already serves {root}")
    creates = _listen(os.path.join(root, SOCKET_NAME))
    commands = _listen(os.path.join(root, cmdwire.SOCKET_NAME)) if command else None
    from runtime.statefiles import process_start_time
    localfs.write_atomic(os.path.join(root, PID_FILE),
                         pid_file_text(os.getpid(), process_start_time(os.getpid())), durable=False)
    _remove_files_on_sigterm(root)
    # Workers are our only children; let the kernel reap them (each worker resets this at once,
    # since the supervisor it becomes must be able to wait for its own children).
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)

    # A zygote that only creates containers (the node's) keeps its spares cold and has each
    # container prepared in a child: its workers become lean supervisors (see _work_lean).
    lean = command is None

    def warm() -> None:
        if lean:
            return
        warm_up_create(root)
        if warm_up is not None:
            warm_up()

    def serve_one(conn: socket.socket, listener: socket.socket) -> None:
        """In a spare that has just accepted `conn`: the request's whole life, then exit."""
        if listener is creates:
            _serve_create(Channel(conn), lean)
        else:
            _serve_command(conn, command)

    # One thread: forking this process is safe only because no other thread exists (see above).
    # The spares accept the connections; this loop only keeps their number up (spares.py).
    pool = SparePool([s for s in (creates, commands) if s is not None], SPARES, warm, serve_one)
    pool.fill()
    if ready_fd is not None:
        os.write(ready_fd, b"1")
        os.close(ready_fd)
    pool.run()


def _remove_files_on_sigterm(root: str) -> None:
    """On SIGTERM, remove our sockets and pid file, then die of the signal as before. Only if the
    pid file still names us: a zygote started later for the same root has taken the paths over.
    (Spares reset SIGTERM as they start: spares.py; a worker never runs this.)"""
    me = os.getpid()

    def on_sigterm(signum, frame) -> None:
        if os.getpid() == me:
            try:
                with open(os.path.join(root, PID_FILE)) as f:
                    ours = f.read().split()[:1] == [str(me)]
            except OSError:
                ours = False
            if ours:
                from runtime.zygote.client import COMMAND_SOCKET_NAME
                for name in (SOCKET_NAME, COMMAND_SOCKET_NAME, PID_FILE):
                    try:
                        os.unlink(os.path.join(root, name))
                    except FileNotFoundError:
                        pass
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, on_sigterm)


def _listen(path: str) -> socket.socket:
    try:
        os.unlink(path)  # a stale socket from a zygote that died
    except FileNotFoundError:
        pass
    return listen(path)


def _serve_create(conn: Channel, lean: bool = False) -> None:
    try:
        request, fds = conn.recv()
    except (ChannelClosed, OSError):
        return
    (_work_lean if lean else _work)(conn, request, fds)


def _serve_command(conn: socket.socket, command) -> None:
    from runtime.zygote import cmdserver

    try:
        request = cmdserver.receive(conn)
    except cmdserver.Refused as e:
        cmdserver.refuse(conn, str(e))
        return
    cmdserver.work(conn, request, command)


def _work(conn: Channel, request: dict, fds: list[int], supervise=None) -> None:
    """Take the client's stdio, create the container, become its supervisor (create.py) — or,
    with `supervise`, hand the supervising over (create_and_supervise says how)."""
    from runtime.container.create import CreateOptions, create_and_supervise  # imported by serve()
    from runtime.errors import ContainerError
    from runtime.spec import bundle

    try:
        if request.get("op") != "create":
            raise ContainerError(f"the zygote does not know request {request.get('op')!r}")
        if supervise is None:
            for target, fd in enumerate(fds[:3]):
                os.dup2(fd, target)
        explain_fd = fds[3] if len(fds) > 3 else None
        spec = bundle.load_bundle(request["bundle"])
        # The same choice the CLI makes in-process: a terminal if the bundle asks for one, else
        # the client's own stdio in the foreground, else a CRI log.
        stdio = "tty" if spec.process.terminal else ("inherit" if request.get("foreground") else "log")
        opts = CreateOptions(root=request["root"], storage=request["storage"],
                             bundle=request["bundle"], stdio=stdio, log_path=request.get("log"),
                             stdin_open=request.get("stdin_open", True),
                             remove_on_exit=request.get("remove_on_exit", False),
                             stdin_pipe=bool(request.get("stdin_pipe")),
                             stdin_once=bool(request.get("stdin_once")),
                             explain_fd=explain_fd, console_socket=request.get("console_socket"))
        create_and_supervise(request["id"], spec, opts, conn, supervise)  # returns only by raising
    except ContainerError as e:
        conn.send({"error": str(e), "type": type(e).__name__, "step": getattr(e, "step", None),
                   "reason": getattr(e, "reason", None), "id": request.get("id")})
    except Exception as e:  # noqa: BLE001 - a bug in a worker must still answer the client
        conn.send({"error": f"zygote worker: {type(e).__name__}: {e}", "type": "ContainerError"})


# --- lean supervisors ------------------------------------------------------------------------------
# A supervisor lives as long as its container, so its memory is paid per container for hours; the
# create before it lasts milliseconds. A worker that both creates and supervises keeps every page
# the create wrote (Python writes a page whenever it touches an object on it, if only to count a
# reference): ~4.3 MiB private per supervisor, measured (smaps_rollup: Private_Dirty), of which
# ~3.3 MiB are the create's. So a lean worker — a cold spare, which has touched ~0.7 MiB — forks
# a *preparer* that does the create (bundle, state directory, seccomp, overlay, cgroup: everything
# up to the plan) and hands the plan over, pickled in a memfd; the worker unpickles it and becomes
# the supervisor (forks the container's init, as always). The create's pages die with the
# preparer. The two steps that need the create's own state stay with the preparer, which the
# supervisor asks over a channel: `finish` (state.json once the init is ready) and `undo` (if the
# init fails). The preparer exits once either has run; the supervisor reaps it.
#
#     client ──► worker (lean) ──fork──► preparer: create up to the plan ──plan──► worker
#                worker: become the supervisor, fork the init ── report ──► preparer: finish
#                preparer: {"created": record} ──► worker ──► client; preparer exits
#
# What this costs a start, against a warm worker that creates and supervises itself (measured
# 2026-12-06 with probes in these processes, load ~1; bench/container_start.py's last row went
# from ~12 to ~16 ms): the cold worker's first receive (~1 ms), the fork of the preparer and the
# ~600 pages its cold create copies (~2 ms), the plan's pickling and unpickling (~1 ms), the
# finish's round trip (~1 ms). Tried, and not kept, because the per-container memory is the point:
# - a warm preparer forked by each spare ahead of its request (request to plan 4.7 -> 2.8 ms):
#   the supervisors of the node's containers (created as nodeagent/cri/zygote.py creates them)
#   then kept ~0.5 MiB more private pages each (Private_Dirty 3.26 -> 3.78 MiB, 12 containers,
#   both checked out at the same path).
# The difference was in the supervisors' [heap] (smaps): pages of the zygote's heap a supervisor
# writes to (reference counts; probably also the bytecode it runs, which 3.11 rewrites as it
# specialises). Which pages those are depends on where things sit in that heap, which we do not
# steer: the same code checked out under a path of another length, or three harmless changes
# together, each harmless alone, have moved supervisors by 0.5 MiB either way. Compare memory
# between versions checked out at the same path, and more than once.
def _work_lean(conn: Channel, request: dict, fds: list[int]) -> None:
    import pickle

    from runtime.process.shim import become_supervisor

    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)                 # (the preparer inherits them: stdio "inherit")
    explain_fd = fds[3] if len(fds) > 3 else None
    ours, theirs = Channel.pair()
    pid = os.fork()
    if pid == 0:                            # the preparer
        try:
            ours.close()
            _work(conn, request, fds, supervise=lambda plan, client, finish, undo:
                  _hand_over(theirs, plan, finish, undo))
        finally:
            os._exit(0)
    theirs.close()
    try:
        message, plan_fds = ours.recv()
    except ChannelClosed:                   # the create failed: the preparer told the client
        os.waitpid(pid, 0)
        return
    with open(plan_fds[0], "rb") as f:
        plan = pickle.load(f)
    if plan.explain_fd is not None:         # the preparer's own dup of it: use ours
        import dataclasses
        plan = dataclasses.replace(plan, explain_fd=explain_fd)
    preparer = _Preparer(ours, pid)
    os.setsid()  # a session of its own, as every supervisor has
    become_supervisor(plan, conn, finish=preparer.finish, undo=preparer.undo,
                      keep_fds=(ours.fileno(),))


class _Preparer:
    """The lean supervisor's side of the channel to its preparer (see _work_lean)."""

    def __init__(self, channel: Channel, pid: int):
        self.channel, self.pid = channel, pid

    def _ask(self, message: dict) -> dict:
        try:
            self.channel.send(message)
            reply, _ = self.channel.recv()
        except (ChannelClosed, OSError):
            reply = {"error": "the container's preparer exited before answering"}
        self.channel.close()
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        return reply

    def finish(self, report: dict) -> dict:
        reply = self._ask({"report": report})
        if "error" in reply:
            raise OSError(reply["error"])
        return reply

    def undo(self) -> None:
        if self.channel.sock.fileno() >= 0:
            self._ask({"undo": True})


def _hand_over(channel: Channel, plan, finish, undo) -> None:
    """In the preparer: send the plan, then do the finish or undo the worker asks for. Never
    returns. If the worker dies first (its container's init dies with it), undo."""
    import pickle

    fd = os.memfd_create("nodeagent-plan", os.MFD_CLOEXEC)
    try:
        data = memoryview(pickle.dumps(plan))
        while data:
            data = data[os.write(fd, data):]
        os.lseek(fd, 0, os.SEEK_SET)
        channel.send({"plan": True}, [fd])
    finally:
        os.close(fd)
    try:
        message, _ = channel.recv()
    except (ChannelClosed, OSError):
        message = {"undo": True}
    if "report" in message:
        try:
            reply = finish(message["report"])
        except Exception as e:  # noqa: BLE001 - e.g. no space for state.json: the worker undoes
            reply = {"error": str(e)}
    else:
        undo()
        reply = {"undone": True}
    try:
        channel.send(reply)
    except OSError:
        pass
    if "error" in reply:                    # the worker fails the create and asks for the undo
        try:
            channel.recv()
        except (ChannelClosed, OSError):
            pass
        undo()
        try:
            channel.send({"undone": True})
        except OSError:
            pass
    os._exit(0)


def start_detached(root: str, command: Callable[[list[str]], int] | None = None,
                   warm_up: Callable[[], None] | None = None) -> int:
    """Start a zygote in the background (double fork, stdio on /dev/null); return its pid once it
    listens. `command`, `warm_up`: as for `serve`."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setsid()
            if os.fork() == 0:
                null = os.open("/dev/null", os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                _serve_sealed(root, w, command, warm_up)
        except BaseException as e:  # noqa: BLE001
            print(f"zygote: {e}", file=sys.stderr)
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    ok = os.read(r, 1)
    os.close(r)
    if ok != b"1":
        raise OSError("the zygote did not start")
    with open(os.path.join(root, PID_FILE)) as f:
        return int(f.read().split()[0])


def _serve_sealed(root: str, ready_fd: int, command, warm_up) -> None:
    """serve(), from a sealed interpreter (sealed.py): if this process is not one, a fresh
    interpreter run from a sealed file serves instead — which can only be told a state root, so a
    caller with its own `command` must have sealed itself first (sealed.ensure_sealed)."""
    from runtime.process import sealed

    if sealed.is_sealed() or command is not None or warm_up is not None:
        serve(root, ready_fd=ready_fd, command=command, warm_up=warm_up)
        return
    sealed.exec_sealed(["-c", f"from runtime.zygote.server import serve; serve({root!r}, ready_fd={ready_fd})"],
                       env=sealed.python_path_env(), pass_fds=(ready_fd,))
