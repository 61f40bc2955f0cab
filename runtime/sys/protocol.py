"""The Syscalls protocol: every privileged call the runtime makes, in one interface.

Code that needs the kernel takes a `Syscalls` and never calls ctypes itself. In production it gets
`LinuxSyscalls` (runtime/sys/linux.py); in unit tests it gets `RecordingSyscalls`
(runtime/sys/recording.py), which does nothing but remember the calls, so a test can assert "this
mounted proc with nosuid,nodev,noexec, then called pivot_root" without root and without a kernel.
(youki's `Syscall` trait with its `TestHelperSyscall` is the model.)

Contract for every method: success returns normally; failure raises `SyscallError` (an OSError) naming
the call and its arguments. Nothing is retried here; EINTR is the one exception, retried by the real
implementation because no caller could want it.

Calls that change "the calling process" (unshare, setns, pivot_root, prctl, capset) change only the
calling *thread* for some resources, and setns/unshare of the mount namespace fail in a threaded
process. Call them only in a fresh single-threaded child, never in the agent itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from runtime.sys.caps import CapSets


@runtime_checkable
class Syscalls(Protocol):
    # --- namespaces ------------------------------------------------------------------------------
    def unshare(self, flags: int) -> None:
        """unshare(2): move the caller into new namespaces (CLONE_NEW* flags)."""

    def setns(self, fd: int, nstype: int = 0) -> None:
        """setns(2): join the namespace `fd` refers to (an open /proc/<pid>/ns/<type> or bind mount).

        `nstype` (a CLONE_NEW* flag) makes the kernel check the fd is of that type; 0 accepts any.
        The caller owns `fd` and closes it."""

    def sethostname(self, name: str) -> None:
        """sethostname(2) in the caller's UTS namespace."""

    def loopback_up(self) -> None:
        """Set IFF_UP on `lo` in the caller's network namespace (ioctl SIOCSIFFLAGS): a new
        network namespace starts with its loopback down."""

    # --- mounts ----------------------------------------------------------------------------------
    def mount(self, source: str | None, target: str, fstype: str | None,
              flags: int = 0, data: str | None = None) -> None:
        """mount(2). `source`/`fstype`/`data` may be None where the kernel ignores them
        (bind, remount, propagation changes)."""

    def umount2(self, target: str, flags: int = 0) -> None:
        """umount2(2), e.g. with MNT_DETACH for the old root after pivot_root."""

    def pivot_root(self, new_root: str, put_old: str) -> None:
        """pivot_root(2): make `new_root` the root of the caller's mount namespace, moving the old
        root to `put_old` (which may equal `new_root`: the "pivot_root(".", ".")" trick runc uses)."""

    # --- process attributes (prctl) --------------------------------------------------------------
    def set_pdeathsig(self, sig: int) -> None:
        """PR_SET_PDEATHSIG: get `sig` when the parent *thread* dies (0 clears)."""

    def get_pdeathsig(self) -> int:
        """PR_GET_PDEATHSIG."""

    def set_no_new_privs(self) -> None:
        """PR_SET_NO_NEW_PRIVS: execve can never again grant privileges (setuid bits, file caps).
        One-way: there is no call to clear it."""

    def get_no_new_privs(self) -> bool:
        """PR_GET_NO_NEW_PRIVS."""

    def set_child_subreaper(self, on: bool) -> None:
        """PR_SET_CHILD_SUBREAPER: orphaned descendants are re-parented to us, not to init."""

    def get_child_subreaper(self) -> bool:
        """PR_GET_CHILD_SUBREAPER."""

    def set_dumpable(self, on: bool) -> None:
        """PR_SET_DUMPABLE: 0 makes /proc/<pid>/* root-owned and blocks ptrace by the container's
        own processes (the CVE-2019-5736 class): set to 0 before joining a container's namespaces."""

    def get_dumpable(self) -> bool:
        """PR_GET_DUMPABLE."""

    # --- capabilities ----------------------------------------------------------------------------
    def capget(self, pid: int = 0) -> CapSets:
        """capget(2): the effective/permitted/inheritable sets of `pid` (0 = the calling thread)."""

    def capset(self, caps: CapSets) -> None:
        """capset(2) on the calling thread."""

    def capbset_read(self, cap: int) -> bool:
        """PR_CAPBSET_READ: is capability number `cap` in the bounding set?"""

    def capbset_drop(self, cap: int) -> None:
        """PR_CAPBSET_DROP: remove `cap` from the bounding set (needs CAP_SETPCAP)."""

    def ambient_clear_all(self) -> None:
        """PR_CAP_AMBIENT_CLEAR_ALL: empty the ambient set."""

    # --- pidfds ----------------------------------------------------------------------------------
    def pidfd_open(self, pid: int, flags: int = 0) -> int:
        """pidfd_open(2): an fd that refers to process `pid` itself, not to a number that may be
        reused. It becomes readable when the process exits, so an event loop can wait on it.
        The caller owns the fd."""

    def pidfd_send_signal(self, pidfd: int, sig: int) -> None:
        """pidfd_send_signal(2): signal exactly the process the pidfd refers to."""

    # --- files -----------------------------------------------------------------------------------
    def openat2(self, dirfd: int, path: str, flags: int, resolve: int = 0, mode: int = 0) -> int:
        """openat2(2): open `path` relative to `dirfd` with RESOLVE_* rules for the walk.
        With RESOLVE_IN_ROOT, `dirfd` is "/" for the walk: the way to open a path inside a
        container's root filesystem without following its symlinks out of it. The caller owns the fd."""

    def chroot_fd(self, dirfd: int) -> None:
        """fchdir(dirfd) then chroot("."): make an open directory our root (and working directory).
        exec uses it with /proc/<init>/root, which is the container's root however the runtime
        itself was started (setns into a mount namespace only resets the root to the namespace's
        *first* root mount, which is the host's when the runtime ran inside a chroot)."""

    def mknod(self, path: str, mode: int, device: int) -> None:
        """mknod(2): make a device node (mode includes S_IFCHR/S_IFBLK; device = os.makedev(ma, mi))."""

    def close_range(self, first: int, last: int, flags: int = 0) -> None:
        """close_range(2): close (or, with CLOSE_RANGE_CLOEXEC, mark close-on-exec) fds first..last."""

    # --- identity and limits ---------------------------------------------------------------------
    def setgroups(self, gids: Sequence[int]) -> None:
        """setgroups(2): the supplementary groups (needs CAP_SETGID)."""

    def setresgid(self, rgid: int, egid: int, sgid: int) -> None:
        """setresgid(2)."""

    def setresuid(self, ruid: int, euid: int, suid: int) -> None:
        """setresuid(2). Leaving uid 0 clears the permitted and effective capabilities unless
        PR_SET_KEEPCAPS is set (set_keepcaps) — the effective set is cleared either way."""

    def set_keepcaps(self, on: bool) -> None:
        """PR_SET_KEEPCAPS."""

    def ambient_raise(self, cap: int) -> None:
        """PR_CAP_AMBIENT_RAISE: add `cap` to the ambient set (it must be permitted and inheritable)."""

    def setrlimit(self, resource: int, soft: int, hard: int) -> None:
        """setrlimit(2) for RLIMIT_* number `resource`; -1 (RLIM_INFINITY) means unlimited."""

    # --- seccomp ---------------------------------------------------------------------------------
    def seccomp_set_filter(self, program: bytes) -> None:
        """PR_SET_SECCOMP with SECCOMP_MODE_FILTER: install the classic-BPF `program` (a packed array
        of struct sock_filter, 8 bytes each) for this thread and every later child. Needs
        no_new_privs or CAP_SYS_ADMIN. There is no way to remove a filter again."""

    def get_seccomp(self) -> int:
        """PR_GET_SECCOMP: 0 (none), 1 (strict) or 2 (filter)."""

    # --- bpf ---------------------------------------------------------------------------------------
    def bpf_load_device_filter(self, instructions: bytes) -> int:
        """bpf(BPF_PROG_LOAD) of a BPF_PROG_TYPE_CGROUP_DEVICE program (packed struct bpf_insn, 8
        bytes each). The kernel's verifier checks it; its log comes back in the error. Returns the
        program's fd, which the caller owns."""

    def bpf_attach_cgroup(self, cgroup_fd: int, program_fd: int, flags: int = 0) -> None:
        """bpf(BPF_PROG_ATTACH) of a device program to the cgroup directory `cgroup_fd`."""

    # --- exec ------------------------------------------------------------------------------------
    def execve(self, path: str, argv: Sequence[str], env: Sequence[str]) -> None:
        """execve(2): replace this process with `path`. Returns only by raising. `env` is a list of
        "KEY=VALUE" strings, as in the OCI spec."""
