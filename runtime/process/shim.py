"""The supervisor ("shim"): the small process that stays the parent of a container.

Why it exists. Only a process's parent can wait for it and learn its exit status. If the agent or
the CLI that created a container were its parent, the exit status would be lost whenever that
process restarts or is killed — and with it the answer to "did my pod's container crash, and why?".
So each container gets a supervisor of its own (the role of containerd-shim or conmon):

    creator ──fork──► (intermediate, exits at once) ──fork──► supervisor ──fork──► container init
                                                              setsid, no threads    pid 1 inside

The double fork detaches it: the creator can exit or be killed (-9) and the supervisor, reparented
to the system's init, keeps running. (A creator that exits soon anyway forks it only once; a
zygote worker becomes the supervisor itself: see zygote.py.) It is single-threaded (a selectors
loop, no threads), so it may fork into Python code safely; it was forked from a process that had
already imported what it needs, so it costs no interpreter start-up.

What it does, all in one loop:
- owns the container's init: waits for it through a pidfd, and on exit writes exit.json (code,
  signal, OOM kill from the cgroup, start and finish times) atomically — whether or not anyone is
  watching;
- pumps the container's stdout/stderr (pipes, or its pty) into the CRI log and to attached
  clients (streams.py, logs.py);
- answers requests on <state dir>/shim.sock: start, exec (forks a process that joins the
  container, see execproc.py), wait (reply when the container exits), resize (tty);
- if it dies, the container dies too (its init has PR_SET_PDEATHSIG(SIGKILL)), so a container is
  never left running without anyone able to record its end.

Its pid namespace trick: unshare(CLONE_NEWPID) changes the pid namespace of the supervisor's
*future children*, not its own. So its first child is pid 1 of a new namespace, and every later
child (exec'd processes) lands in that same namespace — which is what `exec` needs.
"""

from __future__ import annotations

import gc
import os
import selectors
import signal
import time

from runtime.process.channel import Channel, ChannelClosed, listen
from runtime.process.init import ContainerPlan, container_init
from runtime.process.logs import rfc3339nano
from runtime.process.streams import Streams


class Supervisor:
    def __init__(self, plan: ContainerPlan, creator: Channel, finish=None, undo=None):
        from runtime.sys import real

        self.plan, self.creator = plan, creator
        # When the creator became the supervisor itself (create_and_supervise), its last step
        # (`finish`: the report → state.json, and what to tell the client) and its clean-up after
        # a failure (`undo`) run here; otherwise the creator, another process, does them.
        self.finish, self.undo = finish, undo
        self.sys = real()
        self.sel = selectors.DefaultSelector()
        self.init_pid = 0
        self.init_pidfd = -1
        self.sync: Channel | None = None       # to the container's init, until it execs
        self.listener = None
        self.streams = Streams(plan.stdio, plan.log_path, plan.log_max_bytes,  # output, pty
                               stdin_pipe=plan.stdin_pipe, stdin_once=plan.stdin_once)
        self.started_at: str | None = None
        self.waiters: list[Channel] = []
        self.execs: dict[int, tuple[int, Channel | None]] = {}  # pidfd → (pid, client)
        self.exit_record: dict | None = None
        self.start_error: str | None = None

    # --- start-up: create the container's init ------------------------------------------------------
    def run(self) -> None:
        try:
            try:
                self._create()
            except Exception as e:  # noqa: BLE001 - a bug: still undo and say something useful
                self._fail({"error": f"supervisor: {type(e).__name__}: {e}", "step": "create"})
            self._loop()
        finally:
            os._exit(0)

    def _create(self) -> None:
        from runtime.statefiles import process_start_time
        from runtime.sys.consts import CLONE_NEWPID

        plan, spec = self.plan, self.plan.spec
        pidns = spec.linux.namespace("pid")
        userns = spec.linux.namespace("user")
        new_userns = userns is not None and userns.path is None
        try:
            if new_userns:
                # The init creates the pid namespace inside its user namespace and forks its
                # first process (init.fork_into_pid_namespace); we adopt that one.
                self.sys.set_child_subreaper(True)
            elif pidns is not None and pidns.path is None:
                self.sys.unshare(CLONE_NEWPID)
            elif pidns is not None:
                fd = os.open(pidns.path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    self.sys.setns(fd, CLONE_NEWPID)
                finally:
                    os.close(fd)
        except OSError as e:
            self._fail({"error": f"create the pid namespace: {e}", "step": "create the pid namespace"})
        child_stdio, ours_only = self.streams.child_fds(plan.stdin_open)
        self.sync, init_side = Channel.pair()
        pid = os.fork()
        if pid == 0:  # the container's init
            self.sync.close()
            self.creator.close()
            for fd in ours_only:
                os.close(fd)
            container_init(self.sys, plan, init_side, child_stdio, os.getppid())
            os._exit(1)  # not reached
        init_side.close()
        for fd in set(child_stdio) - {0, 1, 2}:
            os.close(fd)
        if plan.stdio == "inherit":
            self._detach_stdio()  # the container has the caller's terminal now; we let go of it
        self.init_pid = pid
        self.init_pidfd = os.pidfd_open(pid)
        if plan.cgroup is not None and not plan.cgroup.self_join_is_cheap:
            self._move_into_cgroup(pid)  # (otherwise the init moves itself: see init.py)
        # While the init builds the container (on the other CPU, if there is one), get what the
        # "created" report needs ready, so that only the report itself waits for the init.
        pid_start, shim_start = process_start_time(pid), process_start_time(os.getpid())
        self.listener = listen(os.path.join(plan.state_dir, "shim.sock"))
        try:
            message, fds = self.sync.recv()
            while message.get("pty") or message.get("hooks") or message.get("userns") \
                    or message.get("forked"):
                if message.get("pty") and plan.console_socket:
                    self._to_console_socket(fds[0], message.get("name", ""))
                elif message.get("pty"):
                    self.streams.master = fds[0]
                elif message.get("userns"):
                    self.sync.send(self._write_id_maps(pid))
                elif message.get("forked"):
                    pid = self._adopt(pid, message["forked"])
                    pid_start = process_start_time(pid)
                    self.sync.send({"adopted": True})
                else:
                    reply = self._create_hooks(pid)
                    self.sync.send(reply)
                    if "error" in reply:
                        self._fail(reply)
                message, fds = self.sync.recv()
        except ChannelClosed:
            message = {"error": f"container init exited ({self._reap_status()}) before it was ready",
                       "step": "init"}
            if self._oom_killed():
                limit = spec.linux.resources.memory.limit if spec.linux.resources.memory else None
                message["error"] = ("container init was killed by the out-of-memory killer before "
                                    "it was ready: linux.resources.memory.limit "
                                    f"({limit} bytes) is too small for it to start").replace("(1 bytes)", "(1 byte)")
        if "error" in message:
            self._fail(message)
        report = {"created": True, "pid": pid, "pid_start": pid_start, "shim_pid": os.getpid(),
                  "shim_start": shim_start, "executable": message.get("executable")}
        if self.finish is not None:
            try:
                report = self.finish(report)
            except Exception as e:  # noqa: BLE001 - e.g. no space for state.json: undo, say why
                self._fail({"error": f"record the container's state: {e}", "step": "create"})
        self._send(self.creator, report)
        self.sel.register(self.listener, selectors.EVENT_READ, self._accept)
        self.sel.register(self.init_pidfd, selectors.EVENT_READ, self._init_exited)
        self.sel.register(self.creator.sock, selectors.EVENT_READ, self._from_creator)
        self.streams.register(self.sel)
        if plan.explain_fd is not None:
            os.close(plan.explain_fd)

    def _to_console_socket(self, master: int, name: str) -> None:
        """runc's --console-socket: the terminal's master side goes to whoever listens on that
        socket (SCM_RIGHTS, with the pty's name as the message, as runc sends it), and is no
        longer ours to pump or log."""
        import socket

        path = self.plan.console_socket
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(path)
                socket.send_fds(sock, [name.encode()], [master])
        except OSError as e:
            self._fail({"error": f"--console-socket {path}: {e.strerror or e}", "step": "create",
                        "reason": f"--console-socket {path}: {e.strerror or e}"})
        finally:
            os.close(master)

    def _write_id_maps(self, pid: int) -> dict:
        """The init's user namespace ID maps (init.enter_user_namespace): we are root outside it,
        so any ranges of the spec may be mapped; each file takes all its lines in one write."""
        linux = self.plan.spec.linux
        try:
            for name, mappings in (("uid_map", linux.uid_mappings), ("gid_map", linux.gid_mappings)):
                text = "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings)
                fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
                try:
                    os.write(fd, text.encode())
                finally:
                    os.close(fd)
        except OSError as e:
            return {"error": f"linux.{'uidMappings' if name == 'uid_map' else 'gidMappings'}: "
                             f"writing /proc/{pid}/{name}: {e.strerror}"}
        return {"mapped": True}

    def _adopt(self, middle: int, pid: int) -> int:
        """The init forked the container's first process into its new pid namespace and exits:
        reap it, and watch the new one (ours now: we are a child subreaper) as the init."""
        try:
            os.waitpid(middle, 0)
        except ChildProcessError:
            pass
        os.close(self.init_pidfd)
        self.init_pid = pid
        self.init_pidfd = os.pidfd_open(pid)
        # Our later children (exec'd processes) belong in its pid namespace, as they do when we
        # create that namespace ourselves: see the module docstring.
        from runtime.sys.consts import CLONE_NEWPID
        fd = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            self.sys.setns(fd, CLONE_NEWPID)
        finally:
            os.close(fd)
        return pid

    def _create_hooks(self, pid: int) -> dict:
        """The prestart and createRuntime hooks, in our (the runtime's) namespaces, while the init
        waits before pivot_root (hooks.py)."""
        from runtime.errors import StepError
        from runtime.process.hooks import run_hooks, state_json

        hooks, state = self.plan.spec.hooks, self._state("creating")
        try:
            self._in_our_pid_namespace(run_hooks, hooks.prestart, "prestart", state)
            self._in_our_pid_namespace(run_hooks, hooks.create_runtime, "createRuntime", state)
        except StepError as e:
            return {"error": str(e), "step": e.step, "reason": e.reason}
        return {"pid": pid}

    def _in_our_pid_namespace(self, fn, *args):
        """fn(*args) with our children born in our own pid namespace, not the container's: a hook
        runs in the runtime's namespaces, and must not die with (or be refused by the end of)
        the container's pid namespace. setns(CLONE_NEWPID) only changes where our *children*
        go, and to our own namespace or a descendant of it, so it can be done and undone."""
        from runtime.sys.consts import CLONE_NEWPID

        theirs = os.open("/proc/self/ns/pid_for_children", os.O_RDONLY | os.O_CLOEXEC)
        ours = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            self.sys.setns(ours, CLONE_NEWPID)
            try:
                return fn(*args)
            finally:
                self.sys.setns(theirs, CLONE_NEWPID)
        finally:
            os.close(theirs)
            os.close(ours)

    def _state(self, status: str) -> bytes:
        from runtime.process.hooks import state_json
        return state_json(self.plan.spec, self.plan.id, status, self.init_pid, self.plan.bundle)

    def _oom_killed(self) -> bool:
        try:
            return self.plan.cgroup is not None and self.plan.cgroup.oom_kills() > 0
        except OSError:
            return False

    def _move_into_cgroup(self, pid: int) -> None:
        """Write the init's pid into the container's cgroup while the init builds its root
        filesystem (init.py says why in parallel), then tell it so."""
        from runtime.explain import Explainer

        reply = {"joined": True}
        explainer = Explainer(self.plan.explain_fd, "supervisor")
        explainer.step(f"move the container's init (pid {pid}) into its cgroup")
        self.plan.cgroup.explain = explainer.shell if explainer else None
        try:
            self.plan.cgroup.add_pid(pid)
        except OSError as e:
            reply = {"joined": False, "error": str(e)}
        self.plan.cgroup.explain = None
        try:
            self.sync.send(reply)
        except OSError:
            pass  # init is already gone; its exit is handled below

    @staticmethod
    def _detach_stdio() -> None:
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)

    def _reap_status(self) -> str:
        try:
            _, status = os.waitpid(self.init_pid, 0)
        except ChildProcessError:
            return "status unknown"
        if os.WIFSIGNALED(status):
            return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
        return f"exit status {os.WEXITSTATUS(status)}"

    def _fail(self, message: dict) -> None:
        """Creation failed: make sure init is gone, undo (if that is ours to do), tell the
        creator, and leave."""
        if self.init_pid:
            try:
                os.kill(self.init_pid, signal.SIGKILL)
                os.waitpid(self.init_pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        if self.undo is not None:
            self.undo()
        self._send(self.creator, message)
        os._exit(0)

    # --- the loop ---------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            for key, _ in self.sel.select():
                key.data(key)

    @staticmethod
    def _send(channel: Channel | None, message: dict, fds=()) -> bool:
        if channel is None:
            return False
        try:
            channel.send(message, fds)
            return True
        except OSError:
            return False  # the client went away; nothing to do about it

    def _accept(self, key) -> None:
        sock, _ = self.listener.accept()
        client = Channel(sock)
        self.sel.register(sock, selectors.EVENT_READ, lambda k, c=client: self._request(c))

    def _drop(self, client: Channel) -> None:
        try:
            self.sel.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        client.close()

    def _from_creator(self, key) -> None:
        try:
            message, fds = self.creator.recv()
        except (ChannelClosed, OSError):
            self.sel.unregister(self.creator.sock)
            self.creator.close()
            self.creator = None  # detached: nobody waits in the foreground
            return
        for fd in fds:
            os.close(fd)
        if message.get("op") == "start":
            self._start(self.creator)

    def _request(self, client: Channel) -> None:
        try:
            message, fds = client.recv()
        except (ChannelClosed, OSError):
            self._drop(client)
            return
        op = message.get("op")
        if op == "start":
            self._start(client)
            self._drop(client)
        elif op == "exec":
            self.sel.unregister(client.sock)  # from now on the exec owns this connection
            self._exec(client, message, fds)
        elif op == "wait":
            self.sel.unregister(client.sock)
            if self.exit_record is not None:
                self._send(client, {"exited": self.exit_record})
                client.close()
            else:
                self.waiters.append(client)
        elif op == "resize" and self.streams.master >= 0:
            self.streams.resize(message.get("rows", 24), message.get("cols", 80))
            self._send(client, {"ok": True})
            self._drop(client)
        elif op == "attach" and self.streams.master >= 0:
            self._send(client, {"ok": True})
            self.streams.attach(client.sock)
        elif op == "attach" and self.streams.stdio == "log" and len(fds) in (2, 3):
            # Without a terminal the client hands us the write ends of its stdout and stderr
            # pipes (and the read end of its stdin pipe): output is copied to them as well as to
            # the log, until the container ends or the client closes its ends.
            self.streams.tee(fds[0], fds[1], fds[2] if len(fds) == 3 else -1)
            self._send(client, {"ok": True})
            self._drop(client)
        else:
            for fd in fds:
                os.close(fd)
            self._send(client, {"error": f"unknown or unavailable request {op!r}"})
            self._drop(client)

    # --- start ----------------------------------------------------------------------------------------
    def _start(self, client: Channel | None) -> None:
        if self.sync is None:
            self._send(client, {"error": "the container was already started"})
            return
        started_ns = time.time_ns()
        error = None
        try:
            self.sync.send({"start": True, "pid": self.init_pid})
            message, _ = self.sync.recv()
            error = message.get("error", "unexpected message from the container's init")
        except ChannelClosed:
            pass  # EOF: execve closed init's end (close-on-exec) — the program is running
        except OSError as e:
            error = f"the container's init is gone ({e.strerror})"
        self.sync.close()
        self.sync = None
        if error is not None:
            self.start_error = error
            self._send(client, {"error": error})
            return
        from runtime.statefiles import write_atomic
        self.started_at = rfc3339nano(started_ns)
        write_atomic(os.path.join(self.plan.state_dir, "started.json"), {"startedAt": self.started_at})
        reply = {"started": True, "startedAt": self.started_at}
        if self.plan.spec.hooks.poststart:
            from runtime.process.hooks import warn_hooks
            # A failing poststart hook is a warning only (the spec): the program runs on.
            warnings = self._in_our_pid_namespace(warn_hooks, self.plan.spec.hooks.poststart,
                                                  "poststart", self._state("running"))
            if warnings:
                reply["warnings"] = warnings
        self._send(client, reply)

    # --- exec ---------------------------------------------------------------------------------------------
    def _exec(self, client: Channel, message: dict, fds: list[int]) -> None:
        from runtime.process.execproc import spawn_exec

        if self.exit_record is not None or self.started_at is None:
            for fd in fds:
                os.close(fd)
            self._send(client, {"error": "the container is not running"})
            client.close()
            return
        pid, pidfd, reply, reply_fds = spawn_exec(self.sys, self.plan, self.init_pid, message, fds,
                                                  client)
        self._send(client, reply, reply_fds)
        for fd in reply_fds:
            os.close(fd)
        self.execs[pidfd] = (pid, client)
        self.sel.register(pidfd, selectors.EVENT_READ, self._exec_exited)

    def _exec_exited(self, key) -> None:
        pidfd = key.fileobj
        pid, client = self.execs.pop(pidfd)
        self.sel.unregister(pidfd)
        os.close(pidfd)
        code = _exit_code(pid)
        self._send(client, {"exited": {"exitCode": code}})
        if client is not None:
            client.close()

    # --- the end -------------------------------------------------------------------------------------
    def _init_exited(self, key) -> None:
        from runtime.statefiles import write_atomic

        code = _exit_code(self.init_pid)
        finished = rfc3339nano()
        self.sel.unregister(self.init_pidfd)
        os.close(self.init_pidfd)
        cg = self.plan.cgroup
        oom = False
        if cg is not None:
            try:
                oom = cg.oom_kills() > 0
                if self.plan.spec.linux.namespace("pid") is None or \
                        self.plan.spec.linux.namespace("pid").path is not None:
                    cg.kill_all()  # no pid namespace of its own died with init: end the rest
            except OSError:
                pass
        self.streams.drain_and_close()
        if self.start_error:
            reason = "StartError"
        elif oom:
            reason = "OOMKilled"
        else:
            reason = "Completed" if code == 0 else "Error"
        record = {"exitCode": code, "signal": code - 128 if code > 128 else None,
                  "oomKilled": oom, "reason": reason, "startedAt": self.started_at,
                  "finishedAt": finished}
        if self.start_error:
            record["message"] = self.start_error
        self.exit_record = record
        if self.plan.remove_on_exit:
            self._remove()          # the record goes to the waiters only: there is no state left
        else:
            write_atomic(os.path.join(self.plan.state_dir, "exit.json"), record)
        for waiter in self.waiters + [self.creator]:
            self._send(waiter, {"exited": record})
        for pidfd, (pid, client) in list(self.execs.items()):
            _exit_code(pid)
            self._send(client, {"exited": {"exitCode": 137}})
        try:
            os.unlink(os.path.join(self.plan.state_dir, "shim.sock"))
        except OSError:
            pass
        os._exit(0)

    def _remove(self) -> None:
        """--rm: delete the container ourselves, before telling anyone it exited (as `runc run`
        has deleted it by the time it returns). Its processes are gone: the pid namespace died
        with its init, or kill_all above ended the rest."""
        from runtime.statefiles import remove_tree

        if self.plan.spec.linux.namespace("mount") is None:
            from runtime.rootfs.mounts import detach_root  # (its mounts are in our namespace)
            detach_root(self.sys, self.plan.rootfs.rootfs)
        if self.plan.cgroup is not None:
            try:
                self.plan.cgroup.destroy()
            except OSError:
                pass  # left for `delete`, which reports it
        if self.plan.storage_dir:
            try:
                remove_tree(self.plan.storage_dir)
            except OSError:
                pass
        if self.listener is not None:
            self.listener.close()
        try:
            remove_tree(self.plan.state_dir)
        except OSError:
            pass


def _exit_code(pid: int) -> int:
    """Reap `pid`: its exit code, or 128 + the signal that killed it (the shell's convention)."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            return 255
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def become_supervisor(plan: ContainerPlan, creator: Channel, finish=None, undo=None,
                      keep_fds: tuple[int, ...] = ()) -> None:
    """Called in the freshly forked process (or a zygote worker that creates the container
    itself; see Supervisor.finish): tidy up what we inherited, then supervise. Never returns.
    `keep_fds`: fds that `finish`/`undo` use, left open with the creator's."""
    gc.freeze()  # the creator's objects are never collected here: no stray finalizer closes our fds
    keep = {creator.fileno(), *keep_fds}
    if plan.explain_fd is not None:
        keep.add(plan.explain_fd)
    if plan.stdio == "inherit":
        keep |= {0, 1, 2}
    else:
        Supervisor._detach_stdio()
        keep |= {0, 1, 2}
    low = 3
    for fd in sorted(k for k in keep if k >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _max_fd())
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(sig, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])  # a creator may hold signals while it creates
    Supervisor(plan, creator, finish, undo).run()


def exec_sealed_supervisor(plan: ContainerPlan, creator: Channel) -> None:
    """In a freshly forked supervisor whose creator does not run from a sealed interpreter:
    become a new interpreter run from one (sealed.py) that supervises the same plan. The plan
    travels in a memfd (pickled: we are sending it to our own code, in our own process). It
    costs this supervisor a Python start-up and its imports; sealed creators avoid that."""
    import pickle

    from runtime.process import sealed

    data = pickle.dumps(plan)
    fd = os.memfd_create("nodeagent-plan", 0)  # not close-on-exec: the new image reads it
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    keep = (creator.fileno(), fd) + ((plan.explain_fd,) if plan.explain_fd is not None else ())
    code = f"from runtime.process.shim import _resume; _resume({creator.fileno()}, {fd})"
    sealed.exec_sealed(["-c", code], env=sealed.python_path_env(), pass_fds=keep)


def _resume(creator_fd: int, plan_fd: int) -> None:
    """exec_sealed_supervisor's other half, in the sealed interpreter."""
    import pickle
    import socket

    with open(plan_fd, "rb") as f:
        plan = pickle.load(f)
    sock = socket.socket(fileno=creator_fd)
    os.set_inheritable(creator_fd, False)
    if plan.explain_fd is not None:
        os.set_inheritable(plan.explain_fd, False)
    become_supervisor(plan, Channel(sock))


def _max_fd() -> int:
    try:
        return max(int(n) for n in os.listdir("/proc/self/fd")) + 1
    except (OSError, ValueError):
        return 65536

