"""RecordingSyscalls: a fake Syscalls for unit tests. It records every call and changes nothing.

Use it to check *what* code would ask of the kernel, without root:

    sys = RecordingSyscalls()
    setup_rootfs(sys, spec)
    assert sys.calls_to("mount")[0].args == ("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)

Failures are injected by call name (and optionally a predicate on the arguments), so the error paths
— "mount failed: is everything made so far undone?" — can be tested too:

    sys.fail("mount", errno.EPERM, when=lambda c: c.args[2] == "overlay")

The prctl getters return what the setters last stored, so code that sets then checks (as careful code
does) behaves as on a kernel.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from runtime.sys.caps import CapSets
from runtime.sys.errors import SyscallError


@dataclass(frozen=True)
class Call:
    """One recorded call: the method's name and its arguments as given (positional, defaults filled)."""

    name: str
    args: tuple[object, ...]


@dataclass
class _Failure:
    name: str
    errno: int
    when: Callable[[Call], bool] | None
    times: int | None  # None: every matching call fails


@dataclass
class RecordingSyscalls:
    """A Syscalls that remembers calls instead of making them."""

    calls: list[Call] = field(default_factory=list)
    caps: CapSets = field(default_factory=lambda: CapSets(0x1FFFFFFFFFF, 0x1FFFFFFFFFF, 0))
    bounding: int = 0x1FFFFFFFFFF
    _failures: list[_Failure] = field(default_factory=list)
    _state: dict[str, object] = field(default_factory=lambda: {
        "pdeathsig": 0, "no_new_privs": False, "child_subreaper": False, "dumpable": True})
    _fds: itertools.count = field(default_factory=lambda: itertools.count(1000))

    # --- the test-facing side --------------------------------------------------------------------
    def fail(self, name: str, err: int, *, when: Callable[[Call], bool] | None = None,
             times: int | None = None) -> None:
        """Make calls to `name` (matching `when`) raise SyscallError(err); `times` limits how often."""
        self._failures.append(_Failure(name, err, when, times))

    def calls_to(self, name: str) -> list[Call]:
        return [c for c in self.calls if c.name == name]

    def names(self) -> list[str]:
        """The sequence of call names, for asserting order ("mount" before "pivot_root")."""
        return [c.name for c in self.calls]

    def _record(self, name: str, *args: object) -> None:
        call = Call(name, args)
        self.calls.append(call)
        for f in self._failures:
            if f.name == name and (f.when is None or f.when(call)) and f.times != 0:
                if f.times is not None:
                    f.times -= 1
                raise SyscallError(f.errno, name, args)

    # --- Syscalls --------------------------------------------------------------------------------
    def unshare(self, flags: int) -> None:
        self._record("unshare", flags)

    def setns(self, fd: int, nstype: int = 0) -> None:
        self._record("setns", fd, nstype)

    def sethostname(self, name: str) -> None:
        self._record("sethostname", name)

    def loopback_up(self) -> None:
        self._record("loopback_up")

    def mount(self, source: str | None, target: str, fstype: str | None,
              flags: int = 0, data: str | None = None) -> None:
        self._record("mount", source, target, fstype, flags, data)

    def umount2(self, target: str, flags: int = 0) -> None:
        self._record("umount2", target, flags)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self._record("pivot_root", new_root, put_old)

    def set_pdeathsig(self, sig: int) -> None:
        self._record("set_pdeathsig", sig)
        self._state["pdeathsig"] = int(sig)

    def get_pdeathsig(self) -> int:
        self._record("get_pdeathsig")
        return int(self._state["pdeathsig"])  # type: ignore[arg-type]

    def set_no_new_privs(self) -> None:
        self._record("set_no_new_privs")
        self._state["no_new_privs"] = True

    def get_no_new_privs(self) -> bool:
        self._record("get_no_new_privs")
        return bool(self._state["no_new_privs"])

    def set_child_subreaper(self, on: bool) -> None:
        self._record("set_child_subreaper", on)
        self._state["child_subreaper"] = bool(on)

    def get_child_subreaper(self) -> bool:
        self._record("get_child_subreaper")
        return bool(self._state["child_subreaper"])

    def set_dumpable(self, on: bool) -> None:
        self._record("set_dumpable", on)
        self._state["dumpable"] = bool(on)

    def get_dumpable(self) -> bool:
        self._record("get_dumpable")
        return bool(self._state["dumpable"])

    def capget(self, pid: int = 0) -> CapSets:
        self._record("capget", pid)
        return self.caps

    def capset(self, caps: CapSets) -> None:
        self._record("capset", caps)
        self.caps = caps

    def capbset_read(self, cap: int) -> bool:
        self._record("capbset_read", cap)
        return bool(self.bounding >> cap & 1)

    def capbset_drop(self, cap: int) -> None:
        self._record("capbset_drop", cap)
        self.bounding &= ~(1 << cap)

    def ambient_clear_all(self) -> None:
        self._record("ambient_clear_all")

    def set_keepcaps(self, on: bool) -> None:
        self._record("set_keepcaps", on)

    def ambient_raise(self, cap: int) -> None:
        self._record("ambient_raise", cap)

    def openat2(self, dirfd: int, path: str, flags: int, resolve: int = 0, mode: int = 0) -> int:
        self._record("openat2", dirfd, path, flags, resolve, mode)
        return next(self._fds)

    def chroot_fd(self, dirfd: int) -> None:
        self._record("chroot_fd", dirfd)

    def mknod(self, path: str, mode: int, device: int) -> None:
        self._record("mknod", path, mode, device)

    def close_range(self, first: int, last: int, flags: int = 0) -> None:
        self._record("close_range", first, last, flags)

    def setgroups(self, gids) -> None:
        self._record("setgroups", tuple(gids))

    def setresgid(self, rgid: int, egid: int, sgid: int) -> None:
        self._record("setresgid", rgid, egid, sgid)

    def setresuid(self, ruid: int, euid: int, suid: int) -> None:
        self._record("setresuid", ruid, euid, suid)

    def setrlimit(self, resource: int, soft: int, hard: int) -> None:
        self._record("setrlimit", resource, soft, hard)

    def seccomp_set_filter(self, program: bytes) -> None:
        self._record("seccomp_set_filter", program)
        self._state["seccomp"] = 2

    def get_seccomp(self) -> int:
        self._record("get_seccomp")
        return int(self._state.get("seccomp", 0))  # type: ignore[arg-type]

    def bpf_load_device_filter(self, instructions: bytes) -> int:
        self._record("bpf_load_device_filter", instructions)
        return next(self._fds)

    def bpf_attach_cgroup(self, cgroup_fd: int, program_fd: int, flags: int = 0) -> None:
        self._record("bpf_attach_cgroup", cgroup_fd, program_fd, flags)

    def execve(self, path: str, argv, env) -> None:
        """Recorded, then returns: code under test treats a returning execve as "the process is
        gone" and stops there, so a unit test sees everything up to the exec."""
        self._record("execve", path, tuple(argv), tuple(env))

    def pidfd_open(self, pid: int, flags: int = 0) -> int:
        self._record("pidfd_open", pid, flags)
        return next(self._fds)

    def pidfd_send_signal(self, pidfd: int, sig: int) -> None:
        self._record("pidfd_send_signal", pidfd, sig)
