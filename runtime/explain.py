"""--explain: print every step of creating a container, with the shell command that would do it.

The course's window into the mechanism. Three pieces:

- `Explainer` writes lines to an fd (the user's stderr). It is unbuffered (one os.write per line)
  so lines from the creator, the supervisor and the container's init — three processes that
  inherited the same fd across fork — interleave whole and in order.
- `ExplainingSyscalls` wraps a Syscalls and prints each call, then makes it: the exact arguments
  (clone flags, mount flags by name) and the equivalent from util-linux where there is one
  (`mount -t proc -o nosuid,nodev,noexec proc /proc`, `unshare --mount --pid ...`).
- `Steps` names the stage each call belongs to ("mount /proc (proc)"); the same object turns a
  failure inside a stage into a StepError naming it, so errors and explanations agree.
"""

from __future__ import annotations

import os
import shlex
import time
from contextlib import contextmanager

from runtime.errors import StepError
from runtime.sys import CapSets
from runtime.sys.caps import names_of
from runtime.sys.consts import (CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS,
                                CLONE_NEWPID, CLONE_NEWUTS, MNT_DETACH, MS_BIND, MS_PRIVATE,
                                MS_REC, MS_REMOUNT, MS_SHARED, MS_SLAVE, MS_UNBINDABLE,
                                describe_flags)


class Explainer:
    """Prints to `fd` (None: prints nothing). `who` names the process ("create", "init", ...).
    Each step shows the milliseconds since the first Explainer of the creating process was made
    (forked processes inherit the clock's origin), so the output is also a rough profile."""

    origin: float | None = None

    def __init__(self, fd: int | None = None, who: str = "create"):
        self.fd, self.who = fd, who
        if fd is not None and Explainer.origin is None:
            Explainer.origin = time.monotonic()

    def __bool__(self) -> bool:
        return self.fd is not None

    def _out(self, text: str) -> None:
        if self.fd is not None:
            try:
                os.write(self.fd, (text + "\n").encode())
            except OSError:
                self.fd = None  # the reader went away; explaining is never worth failing for

    def step(self, title: str) -> None:
        if self.fd is not None:
            ms = (time.monotonic() - (Explainer.origin or time.monotonic())) * 1000
            self._out(f"[{self.who} {ms:6.1f} ms] {title}")

    def call(self, text: str, shell: str | None = None) -> None:
        self._out(f"    {text}" + (f"\n      $ {shell}" if shell else ""))

    def shell(self, command: str) -> None:
        self._out(f"      $ {command}")


class Steps:
    """`with steps("mount /proc"):` — announce a stage and convert its failures to StepError."""

    def __init__(self, explainer: Explainer | None = None):
        self.explainer = explainer or Explainer()

    @contextmanager
    def __call__(self, name: str):
        self.explainer.step(name)
        try:
            yield
        except StepError:
            raise  # already names the innermost stage, the most precise one
        except (OSError, ValueError) as e:
            raise StepError(name, str(e)) from e


_UNSHARE_OPTS = [(CLONE_NEWNS, "--mount"), (CLONE_NEWUTS, "--uts"), (CLONE_NEWIPC, "--ipc"),
                 (CLONE_NEWNET, "--net"), (CLONE_NEWPID, "--pid --fork"), (CLONE_NEWCGROUP, "--cgroup")]
_NSENTER = {CLONE_NEWNS: "--mount", CLONE_NEWUTS: "--uts", CLONE_NEWIPC: "--ipc",
            CLONE_NEWNET: "--net", CLONE_NEWPID: "--pid", CLONE_NEWCGROUP: "--cgroup"}


def _mount_shell(source, target, fstype, flags, data) -> str:
    from runtime.rootfs.options import shell_options

    for bit, name in ((MS_PRIVATE, "private"), (MS_SLAVE, "slave"), (MS_SHARED, "shared"),
                      (MS_UNBINDABLE, "unbindable")):
        if flags & bit and not flags & MS_BIND:
            return f"mount --make-{'r' if flags & MS_REC else ''}{name} {target}"
    opts = shell_options(flags, data)
    if flags & MS_BIND and not flags & MS_REMOUNT:
        return f"mount --{'rbind' if flags & MS_REC else 'bind'} {source} {target}"
    parts = ["mount"]
    if fstype:
        parts += ["-t", fstype]
    if opts:
        parts += ["-o", opts]
    if source:
        parts.append(source)
    parts.append(target)
    return " ".join(shlex.quote(p) for p in parts)


# Lookups, not changes: printing every path resolution would drown the steps that matter.
_QUIET = {"openat2", "capbset_read"}


class ExplainingSyscalls:
    """A Syscalls that prints each call (and its shell equivalent) before making it on `inner`."""

    def __init__(self, inner, explainer: Explainer):
        self._inner, self._x = inner, explainer

    def __getattr__(self, name):  # calls without a special rendering: print name and arguments
        fn = getattr(self._inner, name)

        def call(*args):
            if name not in _QUIET and not name.startswith("get"):
                self._x.call(f"{name}({', '.join(repr(a) for a in args)})")
            return fn(*args)
        return call

    def unshare(self, flags):
        opts = " ".join(o for bit, o in _UNSHARE_OPTS if flags & bit)
        self._x.call(f"unshare({describe_flags(flags, 'clone')})", f"unshare {opts}")
        return self._inner.unshare(flags)

    def setns(self, fd, nstype=0):
        target = os.readlink(f"/proc/self/fd/{fd}") if fd >= 0 else "?"
        self._x.call(f"setns({fd} -> {target}, {describe_flags(nstype, 'clone')})",
                     f"nsenter {_NSENTER.get(nstype, '--all')}=/proc/self/fd/{fd}")
        return self._inner.setns(fd, nstype)

    def mount(self, source, target, fstype, flags=0, data=None):
        shown = _resolve_fd_path(target)
        self._x.call(f"mount({source!r}, {shown!r}, {fstype!r}, {describe_flags(flags, 'mount')}, {data!r})",
                     _mount_shell(source, shown, fstype, flags, data))
        return self._inner.mount(source, target, fstype, flags, data)

    def umount2(self, target, flags=0):
        self._x.call(f"umount2({target!r}, {describe_flags(flags, 'umount')})",
                     f"umount {'-l ' if flags & MNT_DETACH else ''}{target}")
        return self._inner.umount2(target, flags)

    def pivot_root(self, new_root, put_old):
        self._x.call(f"pivot_root({new_root!r}, {put_old!r})", f"pivot_root {new_root} {put_old}")
        return self._inner.pivot_root(new_root, put_old)

    def sethostname(self, name):
        self._x.call(f"sethostname({name!r})", f"hostname {shlex.quote(name)}")
        return self._inner.sethostname(name)

    def loopback_up(self):
        self._x.call("ioctl(SIOCSIFFLAGS, 'lo', IFF_UP)", "ip link set lo up")
        return self._inner.loopback_up()

    def mknod(self, path, mode, device):
        kind = "c" if mode & 0o020000 and not mode & 0o040000 else "b"
        shown = _resolve_fd_path(path)
        self._x.call(f"mknod({shown!r}, {oct(mode)}, {os.major(device)}:{os.minor(device)})",
                     f"mknod -m {oct(mode & 0o7777)[2:]} {shown} {kind} {os.major(device)} {os.minor(device)}")
        return self._inner.mknod(path, mode, device)

    def capbset_drop(self, cap):
        self._x.call(f"prctl(PR_CAPBSET_DROP, {names_of(1 << cap)[0]})")
        return self._inner.capbset_drop(cap)

    def capset(self, caps: CapSets):
        eff = ",".join(n.lower() for n in names_of(caps.effective))
        self._x.call(f"capset({caps})", f"capsh --caps='{eff}=ep'" if eff else "capsh --caps=''")
        return self._inner.capset(caps)

    def setresuid(self, r, e, s):
        self._x.call(f"setresuid({r}, {e}, {s})", f"setpriv --reuid={r} --ruid={r}")
        return self._inner.setresuid(r, e, s)

    def setresgid(self, r, e, s):
        self._x.call(f"setresgid({r}, {e}, {s})", f"setpriv --regid={r} --rgid={r}")
        return self._inner.setresgid(r, e, s)

    def setgroups(self, gids):
        self._x.call(f"setgroups({list(gids)})",
                     f"setpriv --groups={','.join(map(str, gids))}" if gids else "setpriv --clear-groups")
        return self._inner.setgroups(gids)

    def set_no_new_privs(self):
        self._x.call("prctl(PR_SET_NO_NEW_PRIVS, 1)", "setpriv --no-new-privs")
        return self._inner.set_no_new_privs()

    def seccomp_set_filter(self, program):
        self._x.call(f"prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, <BPF program, {len(program) // 8} "
                     "instructions>)  # no shell equivalent; runs on every syscall from now on")
        return self._inner.seccomp_set_filter(program)

    def execve(self, path, argv, env):
        self._x.call(f"execve({path!r}, {list(argv)!r}, <{len(env)} env vars>)",
                     "exec " + " ".join(shlex.quote(a) for a in argv))
        return self._inner.execve(path, argv, env)


def _resolve_fd_path(path: str) -> str:
    """/proc/self/fd/7/null → what fd 7 is, for humans (the call itself uses the fd path)."""
    if path.startswith("/proc/self/fd/"):
        rest = path[len("/proc/self/fd/"):]
        num, _, tail = rest.partition("/")
        try:
            real = os.readlink(f"/proc/self/fd/{num}")
            return f"{real}/{tail}" if tail else real
        except OSError:
            pass
    return path
