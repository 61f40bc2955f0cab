"""Masked and read-only paths, the readonly root, and namespaced sysctls — after pivot_root.

procfs and sysfs are shared with the host: a new pid namespace gets its own /proc *listing*, but
files like /proc/kcore (the host's physical memory), /proc/keys or /proc/sys/kernel/* are the same
kernel objects for everyone. So after pivot_root we cover them:

- masked paths: a file gets /dev/null bound over it (reads are empty, writes vanish); a directory
  gets an empty read-only tmpfs.
- read-only paths: bound onto themselves and remounted read-only, keeping nosuid/nodev/noexec.
  That is what makes `echo 1 > /proc/sys/...` fail with EROFS in a container.

Each path must be exactly the kernel's file: if any component is a symlink we refuse (a symlink
planted where /sys/firmware should be could redirect the mask onto something else), and the
/dev/null we bind must be the real character device 1:3 (runc's CVE-2025-31133 was a container
racing /dev/null into a symlink).
"""

from __future__ import annotations

import os
import stat

from runtime.errors import SpecError, StepError
from runtime.rootfs.paths import check_no_symlink, is_dir
from runtime.sys import Syscalls
from runtime.sys.consts import (MS_BIND, MS_NOATIME, MS_NODEV, MS_NODIRATIME, MS_NOEXEC,
                                MS_NOSUID, MS_RDONLY, MS_REC, MS_RELATIME, MS_REMOUNT)

_KEEP = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME


def _preserved_flags(path: str) -> int:
    # statvfs's ST_* bits are the MS_* bits for these flags.
    return os.statvfs(path).f_flag & _KEEP


def mask_paths(sys: Syscalls, paths: tuple[str, ...]) -> None:
    null_checked = False
    for path in paths:
        st = check_no_symlink(sys, path, f"mask {path}")
        if st is None:
            continue  # nothing there to hide (e.g. /proc/asound without sound hardware)
        if is_dir(st):
            sys.mount("tmpfs", path, "tmpfs", MS_RDONLY, None)
            continue
        if not null_checked:
            null = check_no_symlink(sys, "/dev/null", f"mask {path}")
            if null is None or not stat.S_ISCHR(null.st_mode) or null.st_rdev != os.makedev(1, 3):
                raise StepError(f"mask {path}", "/dev/null is not the character device 1:3")
            null_checked = True
        sys.mount("/dev/null", path, None, MS_BIND)


def readonly_paths(sys: Syscalls, paths: tuple[str, ...]) -> None:
    for path in paths:
        if check_no_symlink(sys, path, f"make {path} read-only") is None:
            continue
        sys.mount(path, path, None, MS_BIND | MS_REC)
        sys.mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | _preserved_flags(path))


def readonly_root(sys: Syscalls) -> None:
    sys.mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | _preserved_flags("/"))


# sysctls that belong to a namespace (so a container may set its own), by prefix or exact name.
_IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")


def check_sysctls(sysctls: tuple[tuple[str, str], ...], new_net: bool, new_ipc: bool) -> None:
    for name, _ in sysctls:
        ok = ((name in _IPC_SYSCTLS or name.startswith("fs.mqueue.")) and new_ipc) or \
             (name.startswith("net.") and new_net)
        if not ok:
            raise SpecError(f"linux.sysctl.{name}", "is not namespaced to this container (it would "
                            "change the host); only kernel.shm*/msg*/sem, fs.mqueue.* with an ipc "
                            "namespace and net.* with a network namespace are allowed")


def write_sysctls(sysctls: tuple[tuple[str, str], ...]) -> None:
    for name, value in sysctls:
        path = "/proc/sys/" + name.replace(".", "/")
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
