"""LinuxSyscalls: the real implementation of the Syscalls protocol, through ctypes and libc.

How a call is made (trio's habit, see STYLE.md): libc is loaded with `use_errno=True`, every function
gets explicit `argtypes`/`restype` so ctypes converts and checks arguments instead of guessing, every
return value is checked, and on -1 the errno is read immediately and raised as a SyscallError that
names the call and its arguments.

Strings cross into the kernel as bytes in the filesystem encoding (os.fsencode), the same as the `os`
module does, so a path that `os.stat` accepts is a path `mount` accepts.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import signal
from collections.abc import Callable, Sequence

from runtime.sys import consts
from runtime.sys.errors import SyscallError, named

_libc = ctypes.CDLL(None, use_errno=True)


def _fn(name: str, restype, *argtypes) -> Callable:
    f = getattr(_libc, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_c_str = ctypes.c_char_p
_unshare = _fn("unshare", ctypes.c_int, ctypes.c_int)
_setns = _fn("setns", ctypes.c_int, ctypes.c_int, ctypes.c_int)
_sethostname = _fn("sethostname", ctypes.c_int, _c_str, ctypes.c_size_t)
_mount = _fn("mount", ctypes.c_int, _c_str, _c_str, _c_str, ctypes.c_ulong, _c_str)
_umount2 = _fn("umount2", ctypes.c_int, _c_str, ctypes.c_int)
_prctl = _fn("prctl", ctypes.c_int,
             ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)
# syscall(2) is variadic: no argtypes, so each argument is passed as an explicit ctypes value.
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


class _CapHeader(ctypes.Structure):  # struct __user_cap_header_struct
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):  # struct __user_cap_data_struct; version 3 uses two of them
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_CapDataPair = _CapData * 2
_capget = _fn("capget", ctypes.c_int, ctypes.POINTER(_CapHeader), ctypes.POINTER(_CapData))
_capset = _fn("capset", ctypes.c_int, ctypes.POINTER(_CapHeader), ctypes.POINTER(_CapData))


class _OpenHow(ctypes.Structure):  # struct open_how, <linux/openat2.h>
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class _BpfProgLoad(ctypes.Structure):  # union bpf_attr, the BPF_PROG_LOAD member (prefix)
    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32),
                ("insns", ctypes.c_uint64), ("license", ctypes.c_uint64),
                ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32),
                ("prog_flags", ctypes.c_uint32), ("prog_name", ctypes.c_char * 16),
                ("prog_ifindex", ctypes.c_uint32), ("expected_attach_type", ctypes.c_uint32),
                ("_rest", ctypes.c_uint8 * 64)]


class _BpfProgAttach(ctypes.Structure):  # union bpf_attr, the BPF_PROG_ATTACH member
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_bpf_fd", ctypes.c_uint32),
                ("attach_type", ctypes.c_uint32), ("attach_flags", ctypes.c_uint32),
                ("replace_bpf_fd", ctypes.c_uint32), ("_rest", ctypes.c_uint8 * 108)]


class _SockFprog(ctypes.Structure):  # struct sock_fprog, <linux/filter.h>: a BPF program
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _enc(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def _check(ret: int, call: str, args: tuple[object, ...]) -> int:
    """Raise SyscallError for a -1 return; retry is the caller's business (see _retry_eintr)."""
    if ret == -1:
        raise SyscallError(ctypes.get_errno(), call, args)
    return ret


def _retry_eintr(do: Callable[[], int], call: str, args: tuple[object, ...]) -> int:
    while True:
        try:
            return _check(do(), call, args)
        except SyscallError as e:
            if e.errno != errno.EINTR:
                raise


def _os_call(fn: Callable, call: str, *args: object) -> None:
    try:
        fn(*args)
    except OSError as e:
        raise SyscallError(e.errno, call, args) from None


class LinuxSyscalls:
    """Syscalls on the running kernel. Stateless: one shared instance is fine."""

    # --- namespaces ------------------------------------------------------------------------------
    def unshare(self, flags: int) -> None:
        _retry_eintr(lambda: _unshare(flags), "unshare", (named(consts.describe_flags(flags, "clone")),))

    def setns(self, fd: int, nstype: int = 0) -> None:
        _retry_eintr(lambda: _setns(fd, nstype), "setns",
                     (fd, named(consts.describe_flags(nstype, "clone"))))

    def sethostname(self, name: str) -> None:
        raw = name.encode()
        _check(_sethostname(raw, len(raw)), "sethostname", (name,))

    def loopback_up(self) -> None:
        # struct ifreq: the name (IFNAMSIZ 16) and, in its union, the short ifr_flags; 40 bytes.
        # Any socket of the namespace serves as the handle for the interface ioctls; _socket and
        # fcntl are built in, so the container's init imports nothing for this.
        import _socket
        import fcntl
        import struct

        sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
        try:
            try:
                ifreq = fcntl.ioctl(sock.fileno(), consts.SIOCGIFFLAGS, struct.pack("16sh22x", b"lo", 0))
                flags = struct.unpack("16sh22x", ifreq)[1]
                fcntl.ioctl(sock.fileno(), consts.SIOCSIFFLAGS,
                            struct.pack("16sh22x", b"lo", flags | consts.IFF_UP))
            except OSError as e:
                raise SyscallError(e.errno, "ioctl", ("lo", named("SIOCSIFFLAGS"), named("IFF_UP"))) from None
        finally:
            sock.close()

    # --- mounts ----------------------------------------------------------------------------------
    def mount(self, source: str | None, target: str, fstype: str | None,
              flags: int = 0, data: str | None = None) -> None:
        args = (source, target, fstype, named(consts.describe_flags(flags, "mount")), data)
        _retry_eintr(lambda: _mount(_enc(source), _enc(target), _enc(fstype), flags, _enc(data)),
                     "mount", args)

    def umount2(self, target: str, flags: int = 0) -> None:
        _retry_eintr(lambda: _umount2(_enc(target), flags), "umount2",
                     (target, named(consts.describe_flags(flags, "umount"))))

    def pivot_root(self, new_root: str, put_old: str) -> None:
        nr = ctypes.c_long(consts.syscall_number("pivot_root"))
        _check(_syscall(nr, _c_str(_enc(new_root)), _c_str(_enc(put_old))),
               "pivot_root", (new_root, put_old))

    # --- prctl -----------------------------------------------------------------------------------
    def _prctl(self, option: int, arg2: int = 0, what: str = "") -> int:
        return _check(_prctl(option, arg2, 0, 0, 0), "prctl", (named(what), arg2))

    def _prctl_get_int(self, option: int, what: str) -> int:
        """The PR_GET_* options that answer through an int pointer rather than the return value."""
        out = ctypes.c_int(0)
        _check(_prctl(option, ctypes.addressof(out), 0, 0, 0), "prctl", (named(what),))
        return out.value

    def set_pdeathsig(self, sig: int) -> None:
        self._prctl(consts.PR_SET_PDEATHSIG, int(sig), "PR_SET_PDEATHSIG")

    def get_pdeathsig(self) -> int:
        return self._prctl_get_int(consts.PR_GET_PDEATHSIG, "PR_GET_PDEATHSIG")

    def set_no_new_privs(self) -> None:
        self._prctl(consts.PR_SET_NO_NEW_PRIVS, 1, "PR_SET_NO_NEW_PRIVS")

    def get_no_new_privs(self) -> bool:
        return bool(self._prctl(consts.PR_GET_NO_NEW_PRIVS, 0, "PR_GET_NO_NEW_PRIVS"))

    def set_child_subreaper(self, on: bool) -> None:
        self._prctl(consts.PR_SET_CHILD_SUBREAPER, int(on), "PR_SET_CHILD_SUBREAPER")

    def get_child_subreaper(self) -> bool:
        return bool(self._prctl_get_int(consts.PR_GET_CHILD_SUBREAPER, "PR_GET_CHILD_SUBREAPER"))

    def set_dumpable(self, on: bool) -> None:
        self._prctl(consts.PR_SET_DUMPABLE, int(on), "PR_SET_DUMPABLE")

    def get_dumpable(self) -> bool:
        return bool(self._prctl(consts.PR_GET_DUMPABLE, 0, "PR_GET_DUMPABLE"))

    # --- capabilities ----------------------------------------------------------------------------
    def capget(self, pid: int = 0) -> CapSets:
        hdr = _CapHeader(consts._LINUX_CAPABILITY_VERSION_3, pid)
        data = _CapDataPair()
        _check(_capget(ctypes.byref(hdr), data), "capget", (pid,))
        # Imported here, not at the top: CapSets is a dataclass, and the sealing step of a CLI
        # needs this module without dataclasses (runtime/sys/__init__.py says why). Our caller
        # (runtime.confine.caps, in a container's init) has imported it already, so this is a
        # dictionary look-up even after pivot_root, where nothing could be loaded any more.
        from runtime.sys.caps import CapSets

        return CapSets(
            effective=data[0].effective | data[1].effective << 32,
            permitted=data[0].permitted | data[1].permitted << 32,
            inheritable=data[0].inheritable | data[1].inheritable << 32,
        )

    def capset(self, caps: CapSets) -> None:
        hdr = _CapHeader(consts._LINUX_CAPABILITY_VERSION_3, 0)
        lo, hi = 0xFFFFFFFF, 32
        data = _CapDataPair(
            _CapData(caps.effective & lo, caps.permitted & lo, caps.inheritable & lo),
            _CapData(caps.effective >> hi, caps.permitted >> hi, caps.inheritable >> hi),
        )
        _check(_capset(ctypes.byref(hdr), data), "capset", (str(caps),))

    def capbset_read(self, cap: int) -> bool:
        return bool(self._prctl(consts.PR_CAPBSET_READ, cap, "PR_CAPBSET_READ"))

    def capbset_drop(self, cap: int) -> None:
        self._prctl(consts.PR_CAPBSET_DROP, cap, "PR_CAPBSET_DROP")

    def ambient_clear_all(self) -> None:
        _check(_prctl(consts.PR_CAP_AMBIENT, consts.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0),
               "prctl", (named("PR_CAP_AMBIENT"), named("PR_CAP_AMBIENT_CLEAR_ALL")))

    def set_keepcaps(self, on: bool) -> None:
        self._prctl(consts.PR_SET_KEEPCAPS, int(on), "PR_SET_KEEPCAPS")

    def ambient_raise(self, cap: int) -> None:
        _check(_prctl(consts.PR_CAP_AMBIENT, consts.PR_CAP_AMBIENT_RAISE, cap, 0, 0),
               "prctl", (named("PR_CAP_AMBIENT"), named("PR_CAP_AMBIENT_RAISE"), cap))

    # --- files -----------------------------------------------------------------------------------
    def openat2(self, dirfd: int, path: str, flags: int, resolve: int = 0, mode: int = 0) -> int:
        how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
        nr = ctypes.c_long(consts.syscall_number("openat2"))
        args = (dirfd, path, flags, named(consts.describe_flags(resolve, "resolve")))
        return _retry_eintr(lambda: _syscall(nr, ctypes.c_int(dirfd), _c_str(_enc(path)),
                                             ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how))),
                            "openat2", args)

    def chroot_fd(self, dirfd: int) -> None:
        _os_call(os.fchdir, "fchdir", dirfd)
        _os_call(os.chroot, "chroot", ".")

    def mknod(self, path: str, mode: int, device: int) -> None:
        try:
            os.mknod(path, mode, device)
        except OSError as e:
            raise SyscallError(e.errno, "mknod", (path, oct(mode), f"{os.major(device)}:{os.minor(device)}")) from None

    def close_range(self, first: int, last: int, flags: int = 0) -> None:
        nr = ctypes.c_long(consts.syscall_number("close_range"))
        _check(_syscall(nr, ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(flags)),
               "close_range", (first, last, named(consts.describe_flags(flags, "close_range"))))

    # --- identity and limits ---------------------------------------------------------------------
    # The os and resource modules wrap these; we only give their errors the SyscallError shape.
    def setgroups(self, gids: Sequence[int]) -> None:
        _os_call(os.setgroups, "setgroups", list(gids))

    def setresgid(self, rgid: int, egid: int, sgid: int) -> None:
        _os_call(os.setresgid, "setresgid", rgid, egid, sgid)

    def setresuid(self, ruid: int, euid: int, suid: int) -> None:
        _os_call(os.setresuid, "setresuid", ruid, euid, suid)

    def setrlimit(self, resource_: int, soft: int, hard: int) -> None:
        try:
            resource.setrlimit(resource_, (soft, hard))
        except (OSError, ValueError) as e:
            err = e.errno if isinstance(e, OSError) and e.errno else errno.EINVAL
            raise SyscallError(err, "setrlimit", (resource_, soft, hard)) from None

    # --- seccomp ---------------------------------------------------------------------------------
    def seccomp_set_filter(self, program: bytes) -> None:
        if len(program) % 8:
            raise SyscallError(errno.EINVAL, "prctl", (named("PR_SET_SECCOMP"), "program not 8-byte aligned"))
        buf = ctypes.create_string_buffer(program, len(program))
        prog = _SockFprog(len(program) // 8, ctypes.addressof(buf))
        _check(_prctl(consts.PR_SET_SECCOMP, consts.SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0),
               "prctl", (named("PR_SET_SECCOMP"), named("SECCOMP_MODE_FILTER"), f"<{len(program) // 8} instructions>"))

    def get_seccomp(self) -> int:
        return self._prctl(consts.PR_GET_SECCOMP, 0, "PR_GET_SECCOMP")

    # --- bpf ---------------------------------------------------------------------------------------
    def bpf_load_device_filter(self, instructions: bytes) -> int:
        insns = ctypes.create_string_buffer(instructions, len(instructions))
        license_ = ctypes.create_string_buffer(b"Apache-2.0")
        log = ctypes.create_string_buffer(16384)
        attr = _BpfProgLoad(prog_type=consts.BPF_PROG_TYPE_CGROUP_DEVICE,
                            insn_cnt=len(instructions) // 8, insns=ctypes.addressof(insns),
                            license=ctypes.addressof(license_), log_level=1, log_size=len(log),
                            log_buf=ctypes.addressof(log), prog_name=b"nodeagent_dev",
                            expected_attach_type=consts.BPF_CGROUP_DEVICE)
        nr = ctypes.c_long(consts.syscall_number("bpf"))
        ret = _syscall(nr, ctypes.c_int(consts.BPF_PROG_LOAD), ctypes.byref(attr),
                       ctypes.c_uint(ctypes.sizeof(attr)))
        if ret == -1:
            err = ctypes.get_errno()
            verifier = log.value.decode(errors="replace").strip().splitlines()[-3:]
            raise SyscallError(err, "bpf", (named("BPF_PROG_LOAD"), named("BPF_PROG_TYPE_CGROUP_DEVICE"),
                                            f"<{len(instructions) // 8} instructions>", *verifier))
        return ret

    def bpf_attach_cgroup(self, cgroup_fd: int, program_fd: int, flags: int = 0) -> None:
        attr = _BpfProgAttach(target_fd=cgroup_fd, attach_bpf_fd=program_fd,
                              attach_type=consts.BPF_CGROUP_DEVICE, attach_flags=flags)
        nr = ctypes.c_long(consts.syscall_number("bpf"))
        _check(_syscall(nr, ctypes.c_int(consts.BPF_PROG_ATTACH), ctypes.byref(attr),
                        ctypes.c_uint(ctypes.sizeof(attr))),
               "bpf", (named("BPF_PROG_ATTACH"), cgroup_fd, program_fd, named("BPF_CGROUP_DEVICE")))

    # --- exec ------------------------------------------------------------------------------------
    def execve(self, path: str, argv: Sequence[str], env: Sequence[str]) -> None:
        environ = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
        try:
            os.execve(path, list(argv), environ)
        except OSError as e:
            raise SyscallError(e.errno, "execve", (path, list(argv))) from None

    # --- pidfds ----------------------------------------------------------------------------------
    # The os and signal modules already wrap these two (Python >= 3.9); we only translate errors.
    def pidfd_open(self, pid: int, flags: int = 0) -> int:
        try:
            return os.pidfd_open(pid, flags)
        except OSError as e:
            raise SyscallError(e.errno, "pidfd_open", (pid, flags)) from None

    def pidfd_send_signal(self, pidfd: int, sig: int) -> None:
        try:
            signal.pidfd_send_signal(pidfd, sig)
        except OSError as e:
            raise SyscallError(e.errno, "pidfd_send_signal", (pidfd, named(signal.Signals(sig).name))) from None
