"""The container's first process, from fork to execve: namespaces, root filesystem, confinement.

The supervisor (shim.py) forks this process after unshare(CLONE_NEWPID), so it is born as pid 1 of
the container's new pid namespace, already single-threaded and with the spec in memory. It runs
`container_init` and leaves only by execve (the container's program replaces it) or os._exit —
never by returning into the supervisor's code, which it is a copy of.

The steps, in order, each named for errors and --explain:

    PR_SET_PDEATHSIG(SIGKILL)   if the supervisor dies, so does the container (it has no one else
                                to record its exit)
    PR_SET_DUMPABLE(0)          before joining anything: a non-dumpable process's /proc files are
                                root's, and no process in the container can ptrace it or open
                                /proc/<pid>/exe — the CVE-2019-5736 class, where a container
                                overwrote the runtime's own binary through that link (our
                                /proc/self/exe is a sealed interpreter anyway: sealed.py)
    join the cgroup (v1)        we write "0" to each hierarchy's `tasks`: a thread moving itself
                                is the one move the kernel makes without waiting for an RCU grace
                                period (cgroups/v1.py says why); the limits were written by the
                                creator and apply to us from here on
    join namespaces by path     e.g. a pod's network namespace, held by its sandbox process
    user namespace              unshare(CLONE_NEWUSER), the supervisor writes the ID maps; then
                                the pid namespace is created here, inside it, and its first
                                process forked (the supervisor, a subreaper, adopts it)
    create namespaces           unshare(mnt|uts|ipc|net)
    loopback up                 in a new network namespace, `lo` starts down: up, as every
                                runtime does (docker's --network none has a working 127.0.0.1)
    hostname
    root filesystem             runtime/rootfs: overlay, mounts, /dev, (the create hooks:
                                prestart and createRuntime by the supervisor, createContainer
                                here; hooks.py), pivot_root, masks
      ... on cgroup v2 a process cannot move itself cheaply, so the supervisor moves us meanwhile;
      that move waits for the grace period (~5-20 ms), in parallel with the mounts, and we wait
      for its "joined" just before the steps that need it:
    cgroup namespace            unshare(CLONE_NEWCGROUP) after the move, so the container sees its
                                own cgroup as "/"; then /sys/fs/cgroup is mounted
    stdio                       pipes to the supervisor, the caller's own fds, or a new pty
    find the executable         after pivot_root, in the container's PATH (executable.py)
    confinement                 runtime/confine: rlimits, seccomp, capabilities, user, no_new_privs
    report "ready", wait for "start"
    startContainer hooks
    close fds, seccomp, execve

The channel to the supervisor is close-on-exec: a successful execve closes it, which the
supervisor reads as "running". A failure sends {"error": ..., "step": ...} instead.
"""

from __future__ import annotations

import fcntl
import os
import signal
import termios
from dataclasses import dataclass

from runtime.errors import ContainerError, StepError
from runtime.process.channel import Channel
from runtime.process.executable import find_executable  # (a fresh import costs the init ~1.7 ms)
from runtime.process.hooks import run_hooks, state_json
from runtime.rootfs import RootfsPlan
from runtime.spec.model import NAMESPACE_TYPES, ContainerSpec
from runtime.sys.consts import CLONE_NEWCGROUP, CLONE_NEWNET, MS_BIND, NAMESPACE_FLAGS


@dataclass(frozen=True)
class ContainerPlan:
    """Everything the supervisor and the container's init need, fixed by the creator."""

    id: str
    spec: ContainerSpec
    rootfs: RootfsPlan
    state_dir: str
    cgroup: object                      # runtime.cgroups.base.Cgroup
    seccomp_program: bytes | None
    stdio: str                          # "inherit" | "log" | "tty"
    log_path: str | None
    explain_fd: int | None = None
    log_max_bytes: int = 10 << 20
    stdin_open: bool = True             # "inherit": pass our stdin too (else /dev/null)
    remove_on_exit: bool = False        # the supervisor deletes everything when init exits (--rm)
    storage_dir: str | None = None      # overlay upper/work, removed with the container
    stdin_pipe: bool = False            # "log": stdin is a pipe the supervisor holds (CRI stdin),
    stdin_once: bool = False            # closed when the first attached writer ends (stdin_once)
    bundle: str = ""                    # for the state the hooks read
    console_socket: str | None = None   # "tty": send the pty master there (runc's --console-socket)


def new_namespace_flags(spec: ContainerSpec, *, include_pid: bool = False,
                        include_cgroup: bool = False) -> int:
    """CLONE_NEW* flags for the namespaces the spec wants created (not joined). The pid namespace
    is the supervisor's to create, the cgroup one waits until we are in our cgroup, and the user
    one comes first of all (enter_user_namespace)."""
    flags = 0
    for ns in spec.linux.namespaces:
        if ns.path is None and ns.type != "user" and (ns.type != "pid" or include_pid) \
                and (ns.type != "cgroup" or include_cgroup):
            flags |= NAMESPACE_FLAGS[NAMESPACE_TYPES[ns.type]]
    return flags


def join_namespaces(sys, spec: ContainerSpec, skip: tuple[str, ...] = ("pid",)) -> None:
    """setns into every namespace the spec gives by path (the pid one is joined by the supervisor,
    since a pid namespace only applies to children)."""
    # Every path is opened before the first setns: once in another mount namespace, the next
    # path would be looked up in that one's file tree.
    fds = []
    try:
        # A user namespace first: the others are then joined with its privileges.
        for ns in sorted(spec.linux.namespaces, key=lambda n: n.type != "user"):
            if ns.path is not None and ns.type not in skip:
                fds.append((os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC), ns.type))
        for fd, kind in fds:
            sys.setns(fd, NAMESPACE_FLAGS[NAMESPACE_TYPES[kind]])
    finally:
        for fd, _ in fds:
            os.close(fd)


def reset_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ and may handle others; ignored signals stay ignored
    across execve, so put every signal back to its default and unblock them all."""
    for sig in signal.valid_signals():
        # getsignal is Python's record of each disposition (read from the kernel at start-up,
        # updated by signal.signal), so only the few that differ cost a syscall.
        if sig in (signal.SIGKILL, signal.SIGSTOP) or signal.getsignal(sig) == signal.SIG_DFL:
            continue
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _install_stdio(fds: tuple[int, int, int]) -> None:
    for target, fd in enumerate(fds):
        if fd != target:
            os.dup2(fd, target)  # the copy at 0/1/2 is not close-on-exec
    for fd in set(fds) - {0, 1, 2}:
        os.close(fd)


def _open_pty(sys, sync: Channel) -> None:
    """A pty from the container's own devpts; the slave becomes the controlling terminal and
    stdio, the master goes to the supervisor. (fcntl and termios are imported at the top: after
    pivot_root the host's Python library is out of reach, so nothing may be imported lazily.)"""
    master, slave = os.openpty()
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    # /dev/console is the terminal too (programs that write to the console reach the user), as
    # runc does it: an empty file in our /dev tmpfs with the pty bound over it.
    try:
        os.close(os.open("/dev/console", os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600))
    except FileExistsError:
        pass
    sys.mount(os.ttyname(slave), "/dev/console", None, MS_BIND)
    _install_stdio((slave, slave, slave))
    sync.send({"pty": True, "name": os.ttyname(0)}, [master])
    os.close(master)


def container_init(sys, plan: ContainerPlan, sync: Channel, stdio_fds: tuple[int, int, int],
                   shim_pid: int) -> None:
    """Never returns normally: ends in execve or os._exit."""
    from runtime.confine import confine, finish
    from runtime.explain import Explainer, Steps
    from runtime.rootfs import setup_rootfs

    spec, process = plan.spec, plan.spec.process
    explainer = Explainer(plan.explain_fd, "init")
    if explainer:
        from runtime.explain import ExplainingSyscalls
        sys = ExplainingSyscalls(sys, explainer)
    step = Steps(explainer)
    code = 1
    try:
        os.umask(0)
        with step("die with the supervisor (PR_SET_PDEATHSIG)"):
            sys.set_pdeathsig(signal.SIGKILL)
            if os.getppid() != shim_pid:  # it died before we could ask: nothing would reap us
                os._exit(1)
        with step("stop being dumpable (PR_SET_DUMPABLE 0)"):
            sys.set_dumpable(False)
        self_joined = plan.cgroup is not None and plan.cgroup.self_join_is_cheap
        if self_joined:
            with step("join the container's cgroup (write 0 to tasks: this thread moves itself)"):
                plan.cgroup.explain = explainer.shell if explainer else None
                try:
                    plan.cgroup.join_self()
                except ContainerError as e:  # a CgroupError: names the file and the errno
                    raise StepError("join the container's cgroup", str(e)) from e
                plan.cgroup.explain = None
        if any(ns.path for ns in spec.linux.namespaces if ns.type != "pid"):
            with step("join namespaces by path"):
                join_namespaces(sys, spec)
        # The supervisor's "joined" (cgroup v2: it moved us) is read once; the cgroup namespace
        # is made once we are in the cgroup. cgroup_ready() below does whichever is still to do.
        cgroup_state = {"moved": self_joined or plan.cgroup is None, "ready": False}
        user_ns = spec.linux.namespace("user")
        if user_ns is not None and user_ns.path is None:
            if not cgroup_state["moved"]:
                _wait_joined(sync, step)  # the move must be done before we fork below
                cgroup_state["moved"] = True
            with step("create the user namespace (the supervisor writes its ID maps)"):
                enter_user_namespace(sys, spec, sync)
            pidns = spec.linux.namespace("pid")
            if pidns is not None and pidns.path is None:
                with step("create the pid namespace and fork its first process"):
                    fork_into_pid_namespace(sys, sync)  # returns in the new process only
        flags = new_namespace_flags(spec)
        if flags:
            with step("create namespaces"):
                sys.unshare(flags)
            if flags & CLONE_NEWNET:
                with step("bring up the loopback interface"):
                    sys.loopback_up()
        if spec.hostname:
            with step(f"set the hostname to {spec.hostname}"):
                sys.sethostname(spec.hostname)
        new_cgroup_ns = (ns := spec.linux.namespace("cgroup")) is not None and ns.path is None

        def cgroup_ready() -> None:
            if cgroup_state["ready"]:
                return
            if not cgroup_state["moved"]:
                _wait_joined(sync, step)
                cgroup_state["moved"] = True
            if new_cgroup_ns:
                with step("create the cgroup namespace"):
                    sys.unshare(new_namespace_flags(spec, include_cgroup=True) & CLONE_NEWCGROUP)
            cgroup_state["ready"] = True

        host_pid = []

        def create_hooks() -> None:
            """prestart and createRuntime by the supervisor (the runtime's namespaces), then
            createContainer here (ours), before pivot_root: see hooks.py."""
            hooks = spec.hooks
            if not (hooks.prestart or hooks.create_runtime or hooks.create_container):
                return
            cgroup_ready()  # the supervisor's "joined" comes first on the channel
            with step("run the prestart and createRuntime hooks (supervisor)"):
                sync.send({"hooks": "create"})
                message, fds = sync.recv()
                for fd in fds:
                    os.close(fd)
                if "error" in message:
                    raise StepError(message.get("step") or "hooks", message.get("reason") or message["error"])
                host_pid.append(message["pid"])
            with step("run the createContainer hooks"):
                run_hooks(hooks.create_container, "createContainer",
                          state_json(spec, plan.id, "creating", host_pid[0], plan.bundle))

        setup_rootfs(sys, spec, plan.rootfs, plan.cgroup, spec.linux.namespace("cgroup") is not None,
                     step, cgroup_ready, create_hooks)
        with step("connect stdin, stdout and stderr"):
            if plan.stdio == "tty":
                _open_pty(sys, sync)
            else:
                _install_stdio(stdio_fds)
        with step("find the executable"):
            executable = find_executable(process.args[0], process.env_value("PATH"), process.cwd)
        with step(f"change directory to {process.cwd}"):
            os.chdir(process.cwd)
        confine(sys, process, plan.seccomp_program, step)
        os.umask(process.user.umask if process.user.umask is not None else 0o022)
        explainer.step("created: waiting for start")
        sync.send({"ready": True, "executable": executable})
        message, fds = sync.recv()
        for fd in fds:
            os.close(fd)
        if not message.get("start"):
            os._exit(0)
        if spec.hooks.start_container:
            with step("run the startContainer hooks"):
                run_hooks(spec.hooks.start_container, "startContainer",
                          state_json(spec, plan.id, "created", message.get("pid"), plan.bundle))
        explainer.step("start: close fds above 2, then execve")
        reset_signals()
        try:
            finish(sys, process, plan.seccomp_program, executable)
        except OSError as e:
            raise StepError("execve", f"{executable}: {e.strerror}") from e
        code = 0  # only reached under a recording Syscalls, whose execve returns
    except StepError as e:
        _report(sync, {"error": str(e), "step": e.step, "reason": e.reason})
        code = 127 if e.step in ("execve", "find the executable") else 1
    except BaseException as e:  # a bug: still tell the supervisor something useful
        _report(sync, {"error": f"container init: {type(e).__name__}: {e}", "step": "init",
                       "reason": str(e)})
    finally:
        os._exit(code)


def _wait_joined(sync: Channel, step) -> None:
    with step("wait for the supervisor to move us into the container's cgroup"):
        message, fds = sync.recv()
        for fd in fds:
            os.close(fd)
        if not message.get("joined"):
            raise StepError("join the container's cgroup", message.get("error", "refused"))


def enter_user_namespace(sys, spec: ContainerSpec, sync: Channel) -> None:
    """unshare(CLONE_NEWUSER), and have the supervisor — root outside, which may map any ids —
    write our uid_map and gid_map (a process may map only its own id into its new namespace).
    Every namespace created after this one is owned by it, so the container's root has its
    capabilities over them (mount, hostname, network) and over nothing outside. Then we become
    its root, when root is mapped, for the steps that follow."""
    sys.unshare(NAMESPACE_FLAGS["user"])
    sync.send({"userns": True})
    message, fds = sync.recv()
    for fd in fds:
        os.close(fd)
    if "error" in message:
        raise StepError("create the user namespace", message["error"])
    if any(m.container_id == 0 for m in spec.linux.gid_mappings):
        sys.setresgid(0, 0, 0)
    if any(m.container_id == 0 for m in spec.linux.uid_mappings):
        sys.setresuid(0, 0, 0)


def fork_into_pid_namespace(sys, sync: Channel) -> None:
    """With a user namespace, the pid namespace must be created inside it (procfs may only be
    mounted by a process privileged over the pid namespace's owner), so we create it here rather
    than the supervisor, and fork its first process: this one tells the supervisor (a child
    subreaper, which adopts the new process) and exits; the new one returns once adopted."""
    sys.unshare(NAMESPACE_FLAGS["pid"])
    pid = os.fork()
    if pid > 0:
        try:
            sync.send({"forked": pid})
        finally:
            os._exit(0)
    message, fds = sync.recv()  # {"adopted": true}: our parent is the supervisor now
    for fd in fds:
        os.close(fd)
    if not message.get("adopted"):
        raise StepError("create the pid namespace", message.get("error", "not adopted"))
    sys.set_pdeathsig(signal.SIGKILL)  # (a fork does not inherit it)


def _report(sync: Channel, message: dict) -> None:
    try:
        sync.send(message)
    except OSError:
        pass
