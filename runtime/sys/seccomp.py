"""Compile a seccomp policy into a BPF program with libseccomp (ctypes, like the rest of runtime/sys).

seccomp in filter mode runs a small classic-BPF program on *every* syscall the process makes. The
program sees the architecture, the syscall number and its six arguments, and answers ALLOW,
ERRNO(n), KILL, ... Writing that program by hand means knowing every architecture's syscall numbers
and the quirks of 32-bit arguments; libseccomp does it: we describe rules by syscall *name* and it
emits the program (the same library runc, crun and systemd use).

We split "compile" from "load", which libseccomp normally does in one seccomp_load():

    compile_filter(...) -> bytes      here, in the parent, before any fork: the program as bytes
                                      (a packed array of struct sock_filter, 8 bytes each)
    Syscalls.seccomp_set_filter(b)    in the container's init, as the very last step before execve

so the container's init needs no libseccomp at all and only does one prctl, and a compiled program
can be cached and reused for every container with the same profile.

Unknown syscall names (a newer kernel's calls that this libseccomp does not know) are skipped, as
runc does: a rule for a syscall the filter cannot name cannot be enforced either way, and the default
action then applies.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable, Sequence

# --- libseccomp's ABI (seccomp.h) ---------------------------------------------------------------
SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_ACT_KILL_THREAD = 0x00000000
SCMP_ACT_TRAP = 0x00030000
SCMP_ACT_ERRNO_BASE = 0x00050000   # ERRNO(n) = BASE | n
SCMP_ACT_TRACE_BASE = 0x7FF00000
SCMP_ACT_LOG = 0x7FFC0000
SCMP_ACT_ALLOW = 0x7FFF0000

# The OCI spec's names for actions; ERRNO and TRACE take a number (errnoRet).
ACTIONS: dict[str, int] = {
    "SCMP_ACT_KILL": SCMP_ACT_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": SCMP_ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": SCMP_ACT_KILL_PROCESS,
    "SCMP_ACT_TRAP": SCMP_ACT_TRAP,
    "SCMP_ACT_ERRNO": SCMP_ACT_ERRNO_BASE,
    "SCMP_ACT_TRACE": SCMP_ACT_TRACE_BASE,
    "SCMP_ACT_LOG": SCMP_ACT_LOG,
    "SCMP_ACT_ALLOW": SCMP_ACT_ALLOW,
}

# Argument comparisons (enum scmp_compare).
OPS: dict[str, int] = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}

# OCI architecture names → libseccomp's names for them.
ARCHES: dict[str, str] = {
    "SCMP_ARCH_X86": "x86", "SCMP_ARCH_X86_64": "x86_64", "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_ARM": "arm", "SCMP_ARCH_AARCH64": "aarch64",
    "SCMP_ARCH_PPC64LE": "ppc64le", "SCMP_ARCH_S390X": "s390x", "SCMP_ARCH_RISCV64": "riscv64",
}

_SCMP_FLTATR_CTL_OPTIMIZE = 8  # 2 = a binary tree of syscall numbers instead of a linear list
_NR_SCMP_ERROR = -1


def action(name: str, errno_ret: int | None = None) -> int:
    """The libseccomp action number for an OCI action name; ValueError for an unknown one."""
    try:
        base = ACTIONS[name]
    except KeyError:
        raise ValueError(f"unknown seccomp action {name!r}") from None
    if base in (SCMP_ACT_ERRNO_BASE, SCMP_ACT_TRACE_BASE):
        import errno as _errno
        return base | ((_errno.EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    return base


class SeccompError(OSError):
    """libseccomp refused something: the message names the call and the syscall or arch."""


class _ArgCmp(ctypes.Structure):  # struct scmp_arg_cmp
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


_lib = None


def _libseccomp():
    """Load libseccomp.so.2 once (by soname: ctypes.util.find_library would run ldconfig)."""
    global _lib
    if _lib is None:
        try:
            lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        except OSError as e:
            raise SeccompError(0, f"libseccomp.so.2 not found ({e}); apt-get install libseccomp2") from None
        vp, u32, i = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int
        for name, res, args in [
            ("seccomp_init", vp, [u32]),
            ("seccomp_release", None, [vp]),
            ("seccomp_arch_resolve_name", u32, [ctypes.c_char_p]),
            ("seccomp_arch_native", u32, []),
            ("seccomp_arch_exist", i, [vp, u32]),
            ("seccomp_arch_add", i, [vp, u32]),
            ("seccomp_attr_set", i, [vp, i, u32]),
            ("seccomp_syscall_resolve_name", i, [ctypes.c_char_p]),
            ("seccomp_rule_add_array", i, [vp, u32, i, ctypes.c_uint, ctypes.POINTER(_ArgCmp)]),
            ("seccomp_export_bpf", i, [vp, i]),
        ]:
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
        _lib = lib
    return _lib


def _check(ret: int, what: str) -> None:
    if ret < 0:  # libseccomp returns -errno
        raise SeccompError(-ret, f"{what}: {os.strerror(-ret)}")


Rule = tuple[str, int, Sequence[tuple[int, int, int, int]]]
"""(syscall name, action number, [(arg index, op number, value, value_two), ...])"""


def compile_filter(default_action: int, arches: Iterable[str], rules: Iterable[Rule]) -> bytes:
    """The BPF program for a policy: `default_action` for every syscall no rule matches.

    `arches` are libseccomp names ("x86_64", "x86", "x32"); the native one is always included. A
    syscall made with an architecture not in the filter is killed (libseccomp's default), which
    is what stops a 32-bit syscall from slipping past a 64-bit-only list."""
    lib = _libseccomp()
    ctx = lib.seccomp_init(default_action)
    if not ctx:
        raise SeccompError(0, f"seccomp_init({default_action:#x}) failed")
    try:
        _check(lib.seccomp_attr_set(ctx, _SCMP_FLTATR_CTL_OPTIMIZE, 2), "seccomp_attr_set(OPTIMIZE, 2)")
        for arch in arches:
            token = lib.seccomp_arch_resolve_name(arch.encode())
            if token == 0:
                raise SeccompError(0, f"unknown seccomp architecture {arch!r}")
            if lib.seccomp_arch_exist(ctx, token) != 0:
                _check(lib.seccomp_arch_add(ctx, token), f"seccomp_arch_add({arch})")
        for name, act, args in rules:
            nr = lib.seccomp_syscall_resolve_name(name.encode())
            if nr == _NR_SCMP_ERROR:
                continue  # not a syscall this libseccomp knows on any of our arches
            arr = (_ArgCmp * max(len(args), 1))(*[_ArgCmp(a, op, v, v2) for a, op, v, v2 in args])
            ret = lib.seccomp_rule_add_array(ctx, act, nr, len(args), arr)
            if ret == -13 and act == default_action:  # -EACCES: a rule that repeats the default
                continue
            _check(ret, f"seccomp rule for {name}")
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            _check(lib.seccomp_export_bpf(ctx, fd), "seccomp_export_bpf")
            size = os.lseek(fd, 0, os.SEEK_END)
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)
