"""Kernel ABI constants: namespace (clone) flags, mount flags, prctl options, capabilities.

Values are the kernel's, from <linux/sched.h>, <linux/mount.h>, <linux/prctl.h> and
<linux/capability.h>; tests/unit/runtime/sys/test_consts.py checks them against the installed headers.
They live here, not in the modules that use them, so that a reader has one table to look things up in.
"""

from __future__ import annotations

import os

# --- Namespaces: the CLONE_NEW* flags, used by unshare(2), clone(2) and setns(2) -------------------
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000  # mount namespace (the oldest, hence the generic name)
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# The name each namespace has under /proc/<pid>/ns/, with its flag. setns(fd, flag) checks that fd
# really is a namespace of that type; 0 accepts any type.
NAMESPACE_FLAGS: dict[str, int] = {
    "mnt": CLONE_NEWNS,
    "uts": CLONE_NEWUTS,
    "ipc": CLONE_NEWIPC,
    "pid": CLONE_NEWPID,
    "net": CLONE_NEWNET,
    "cgroup": CLONE_NEWCGROUP,
    "user": CLONE_NEWUSER,
    "time": CLONE_NEWTIME,
}

# --- mount(2) flags ------------------------------------------------------------------------------
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17  # propagation types: exactly one of these four per call
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

# --- memfd_create(2) flags (the others are in Python's os module) ---------------------------------
MFD_EXEC = 0x0010  # Linux 6.3+: say the memfd is executable (else vm.memfd_noexec may refuse it)

# --- umount2(2) flags ----------------------------------------------------------------------------
MNT_FORCE = 1
MNT_DETACH = 2  # lazy unmount: detach now, free when the last user goes (how pivot_root's old root goes)
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8

# --- network interface ioctls (<linux/sockios.h>, <net/if.h>) -----------------------------------
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

# --- prctl(2) options ----------------------------------------------------------------------------
PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_GET_KEEPCAPS = 7
PR_SET_KEEPCAPS = 8  # keep the permitted set across setuid() away from 0 (cleared again by execve)
PR_GET_SECCOMP = 21
PR_SET_SECCOMP = 22
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_IS_SET = 1
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_LOWER = 3
PR_CAP_AMBIENT_CLEAR_ALL = 4

# --- seccomp (<linux/seccomp.h>) -----------------------------------------------------------------
SECCOMP_MODE_DISABLED = 0
SECCOMP_MODE_STRICT = 1
SECCOMP_MODE_FILTER = 2  # a BPF program decides each syscall; /proc/<pid>/status shows "Seccomp: 2"

# --- openat2(2) resolve flags (<linux/openat2.h>) -------------------------------------------------
# How a path is walked. RESOLVE_IN_ROOT makes the directory fd act as "/" for the walk: ".." and
# absolute symlinks cannot climb out of it, which is exactly what resolving a path *inside a
# container's root filesystem* from the host needs (an image may contain hostile symlinks).
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02  # refuse /proc/<pid>/fd/N-style "magic" links
RESOLVE_NO_SYMLINKS = 0x04    # refuse every symlink (ELOOP): for paths that must be what they say
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# --- close_range(2) flags (<linux/close_range.h>) -----------------------------------------------
CLOSE_RANGE_UNSHARE = 1 << 1
CLOSE_RANGE_CLOEXEC = 1 << 2  # mark instead of close: the fds vanish at execve, not before

# --- Capabilities (<linux/capability.h>) ---------------------------------------------------------
_LINUX_CAPABILITY_VERSION_3 = 0x20080522  # 64-bit sets, passed as two 32-bit halves

CAPABILITIES: dict[str, int] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}
CAP_LAST_CAP = max(CAPABILITIES.values())

# --- bpf(2) (<linux/bpf.h>): only what a cgroup device filter needs ------------------------------
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6          # attach type
BPF_F_ALLOW_MULTI = 1 << 1

# --- Resource limits (<asm-generic/resource.h>), by the names config.json uses ----------------------
RLIMITS: dict[str, int] = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

# --- Syscall numbers for calls glibc has no wrapper for --------------------------------------------
# pivot_root, openat2 and close_range have no glibc wrapper in Debian 12's glibc; they are reached
# through syscall(2). Numbers differ per architecture
# (x86_64 kept its historical table; arm64 uses the generic one).
# close_range and openat2 are recent enough to have the same number everywhere.
_SYSCALL_NUMBERS: dict[str, dict[str, int]] = {
    "x86_64": {"pivot_root": 155, "close_range": 436, "openat2": 437, "bpf": 321},
    "aarch64": {"pivot_root": 41, "close_range": 436, "openat2": 437, "bpf": 280},
}


def syscall_number(name: str) -> int:
    """The number of syscall `name` on this machine's architecture."""
    arch = os.uname().machine  # what platform.machine() returns, without importing platform (~1 ms)
    try:
        return _SYSCALL_NUMBERS[arch][name]
    except KeyError:
        raise NotImplementedError(f"syscall {name!r} has no known number on {arch}") from None


# --- Turning numbers back into names, for error messages and recorded calls ------------------------
_FLAG_TABLES: dict[str, dict[str, int]] = {
    "clone": {k: v for k, v in globals().items() if k.startswith("CLONE_NEW")},
    "mount": {k: v for k, v in globals().items() if k.startswith("MS_")},
    "umount": {"MNT_FORCE": MNT_FORCE, "MNT_DETACH": MNT_DETACH, "MNT_EXPIRE": MNT_EXPIRE,
               "UMOUNT_NOFOLLOW": UMOUNT_NOFOLLOW},
    "resolve": {k: v for k, v in globals().items() if k.startswith("RESOLVE_")},
    "close_range": {"CLOSE_RANGE_UNSHARE": CLOSE_RANGE_UNSHARE, "CLOSE_RANGE_CLOEXEC": CLOSE_RANGE_CLOEXEC},
}


def describe_flags(value: int, table: str) -> str:
    """'MS_BIND|MS_REC' for 0x5000 in the "mount" table; unknown bits are shown in hex."""
    names = []
    rest = value
    for name, bit in sorted(_FLAG_TABLES[table].items(), key=lambda kv: kv[1]):
        if bit and value & bit == bit and rest & bit:
            names.append(name)
            rest &= ~bit
    if rest:
        names.append(hex(rest))
    return "|".join(names) if names else "0"
