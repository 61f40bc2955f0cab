"""`exec`: a new process inside a running container.

There is no "enter a container" syscall: a container is just a set of namespaces, a cgroup and
some restrictions, so a process enters it by taking on each of them. The supervisor forks this
process (it lands in the container's pid namespace: see shim.py), which then, in order:

    PR_SET_PDEATHSIG, PR_SET_DUMPABLE(0)   as the container's init did, and for the same reasons;
                                           non-dumpable *before* setns, so processes already in
                                           the container cannot ptrace us or read our memory
                                           while we still hold the runtime's privileges
    join the cgroup                        limits apply to the exec'd process too
    setns(ipc, uts, net, cgroup, mnt)      opened from /proc/<init pid>/ns/ first — after joining
                                           the mount namespace, the host's /proc is out of sight
    chroot to the init's root              /proc/<init pid>/root, opened before the setns
    chdir, stdio (or a pty from the container's own devpts)
    the same confinement as the container (runtime/confine): capabilities, user, seccomp, ...
    execve

setns into a mount namespace is refused to a multi-threaded process (EINVAL): one more reason this
is a fresh fork of the single-threaded supervisor, never a thread of the agent.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import signal
import termios

from runtime.errors import StepError
from runtime.process.channel import Channel
from runtime.process.init import ContainerPlan, _install_stdio, reset_signals
from runtime.spec.model import User
from runtime.sys.consts import NAMESPACE_FLAGS

# mnt last: until then we need the host's /proc to open the others (we opened them all first
# anyway), and joining it also moves our root and working directory into the container.
_JOIN_ORDER = ("ipc", "uts", "net", "cgroup", "mnt")


def exec_process(plan: ContainerPlan, request: dict):
    """The Process to run: the container's own, with the request's args/env/cwd/user/tty."""
    base = plan.spec.process
    user = base.user
    if request.get("uid") is not None:
        user = User(uid=int(request["uid"]), gid=int(request.get("gid") or 0),
                    additional_gids=tuple(request.get("additional_gids") or ()))
    return dataclasses.replace(
        base, args=tuple(request["args"]), env=base.env + tuple(request.get("env") or ()),
        cwd=request.get("cwd") or base.cwd, user=user, terminal=bool(request.get("tty")))


def spawn_exec(sys, plan: ContainerPlan, init_pid: int, request: dict, fds: list[int],
               client: Channel) -> tuple[int, int, dict, list[int]]:
    """In the supervisor: fork the process that will join the container, and learn how it went.
    Returns its pid, a pidfd for it (the supervisor waits on it), the reply for the client, and
    the fds to send with the reply (a pty master for `exec -t`). The client's fds are closed."""
    from runtime.process.channel import ChannelClosed

    to_parent, to_child = Channel.pair()
    pid = os.fork()
    if pid == 0:
        to_parent.close()
        client.close()
        exec_in_container(sys, plan, init_pid, request, fds, to_child)
        os._exit(1)  # not reached
    to_child.close()
    for fd in fds:
        os.close(fd)
    pidfd = os.pidfd_open(pid)
    reply: dict = {"pid": pid}
    reply_fds: list[int] = []
    try:
        while True:
            message, got = to_parent.recv()
            if message.get("pty"):
                reply_fds = got
                continue
            if "error" in message:
                reply = {"error": message["error"]}
            break
    except ChannelClosed:
        pass  # its channel closed on execve: it runs
    to_parent.close()
    return pid, pidfd, reply, reply_fds


def exec_in_container(sys, plan: ContainerPlan, init_pid: int, request: dict, fds: list[int],
                      parent: Channel) -> None:
    """Runs in the supervisor's fresh child; ends in execve or os._exit."""
    from runtime.confine import confine, finish
    from runtime.explain import Steps
    from runtime.process.executable import find_executable

    step = Steps()
    code = 1
    try:
        process = exec_process(plan, request)
        with step("die with the supervisor"):
            sys.set_pdeathsig(signal.SIGKILL)
        with step("stop being dumpable"):
            sys.set_dumpable(False)
        if plan.cgroup is not None:
            with step("join the container's cgroup"):
                plan.cgroup.join_self()
        with step("join the container's namespaces"):
            ns_fds = []
            # A user namespace first, so that the others are joined with its privileges
            # (setns into the namespace we are already in would be EINVAL: only if it has one).
            user = ("user",) if plan.spec.linux.namespace("user") is not None else ()
            for name in user + _JOIN_ORDER:
                theirs = f"/proc/{init_pid}/ns/{name}"
                if user and os.stat(theirs).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                    continue  # one it shares with us (not ours to enter again from its user ns)
                ns_fds.append((name, os.open(theirs, os.O_RDONLY | os.O_CLOEXEC)))
            # The init's root, opened while the host's /proc is still in sight: see below.
            root_fd = os.open(f"/proc/{init_pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            for name, fd in ns_fds:
                sys.setns(fd, NAMESPACE_FLAGS[name])
                os.close(fd)
        with step("take the container's root directory"):
            # setns(mnt) sets our root to the namespace's *first* root mount. After the init's
            # pivot_root that is the container's root — unless the runtime itself ran inside a
            # chroot, where pivot_root put the container's root on top of the chroot's directory
            # and the namespace's first root is still the host's "/". The init's own root is right
            # in both cases (nsenter --root does the same).
            sys.chroot_fd(root_fd)
            os.close(root_fd)
        with step(f"change directory to {process.cwd}"):
            os.chdir(process.cwd)
        with step("connect stdin, stdout and stderr"):
            if process.terminal:  # (no lazy imports: the host's Python library is out of sight now)
                master, slave = os.openpty()
                os.setsid()
                fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
                _install_stdio((slave, slave, slave))
                parent.send({"pty": True}, [master])
                os.close(master)
                for fd in fds:
                    os.close(fd)
            elif len(fds) == 3:
                _install_stdio((fds[0], fds[1], fds[2]))
            else:
                null = os.open("/dev/null", os.O_RDWR)
                _install_stdio((null, null, null))
        with step("find the executable"):
            executable = find_executable(process.args[0], process.env_value("PATH"), process.cwd)
        confine(sys, process, plan.seccomp_program, step)
        os.umask(process.user.umask if process.user.umask is not None else 0o022)
        reset_signals()
        try:
            finish(sys, process, plan.seccomp_program, executable)
        except OSError as e:
            raise StepError("execve", f"{executable}: {e.strerror}") from e
    except StepError as e:
        code = 127 if e.step in ("execve", "find the executable") else 126
        _tell(parent, {"error": str(e), "step": e.step})
    except BaseException as e:
        _tell(parent, {"error": f"exec: {type(e).__name__}: {e}"})
    finally:
        os._exit(code)


def _tell(channel: Channel, message: dict) -> None:
    try:
        channel.send(message)
    except OSError:
        pass
