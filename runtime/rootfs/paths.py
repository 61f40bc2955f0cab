"""Paths inside a container's root filesystem, resolved from outside it without being fooled.

Before pivot_root, the container's init still sees the host's "/". An image is untrusted data: its
/etc/hosts may be a symlink to "/etc/shadow", its /dev a symlink to "/", and a naive
os.path.join(rootfs, "/etc/hosts") followed by mount() would bind a volume over the *host's* file.
(runc's CVE-2021-30465 and the CVE-2019-19921 family were exactly this.)

The fix is to resolve every path with the rootfs as "/": openat2(2) with RESOLVE_IN_ROOT does it in
the kernel — ".." stops at the root, and absolute symlinks are taken relative to it — and returns an
O_PATH fd for exactly the file it found. We then act on that fd, not on a path string, through the
"/proc/self/fd/N" magic link: mount(2) onto "/proc/self/fd/N" mounts on the very dentry the fd
holds, so nothing can be swapped in between the check and the use.

Who owns the fds: every function returning an fd hands it to the caller, who closes it.
"""

from __future__ import annotations

import errno
import os
import stat

from runtime.errors import StepError
from runtime.sys import Syscalls
from runtime.sys.consts import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS
from runtime.sys.errors import SyscallError

_IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
AT_FDCWD = -100


def fd_path(fd: int) -> str:
    """The magic-link path of an fd: mount/mknod/symlink through it act on what the fd holds."""
    return f"/proc/self/fd/{fd}"


class SymlinkRefused(SyscallError):
    """A path in the root filesystem could not be used because of a symlink the image put on it
    (a SyscallError with the same errno, so callers' errno checks work as before; only the
    message changes: it names the path and the symlink instead of an openat2 call)."""

    def __init__(self, err: int, path: str, link: str, target: str, must_be_real: bool):
        super().__init__(err, "openat2", (path,))
        self.path, self.link, self.target, self.must_be_real = path, link, target, must_be_real

    def __str__(self) -> str:
        if self.must_be_real:
            why = f"{self.path} must be a real directory in the root filesystem"
        else:
            why = (f"followed inside the root filesystem it leads nowhere ({self.strerror}), and "
                   "it is never followed outside it")
        on = "" if self.link == self.path else f" (on the way to {self.path})"
        return (f"refused: {self.link}{on} in the root filesystem is a symlink to {self.target!r}, "
                f"which could lead outside the container; {why}")


def open_in_root(sys: Syscalls, rootfd: int, path: str, flags: int = os.O_PATH,
                 no_symlinks: bool = False) -> int:
    """An fd for `path` inside the tree at `rootfd`, which acts as "/" for the walk.
    With `no_symlinks`, any symlink on the way is an error (ELOOP)."""
    resolve = _IN_ROOT | (RESOLVE_NO_SYMLINKS if no_symlinks else 0)
    try:
        return sys.openat2(rootfd, path.lstrip("/") or ".", flags, resolve)
    except SyscallError as e:
        if e.errno not in (errno.ELOOP, errno.ENOENT, errno.ENOTDIR, errno.EXDEV):
            raise
        link = _first_symlink(rootfd, path)
        if link is None:
            raise
        raise SymlinkRefused(e.errno, "/" + path.strip("/"), link[0], link[1], no_symlinks) from e


def _first_symlink(rootfd: int, path: str) -> tuple[str, str] | None:
    """The first component of `path` (inside the root) that is a symlink, and its target; read
    without following anything (for error messages only)."""
    dirfd = os.dup(rootfd)
    try:
        walked = ""
        for name in [p for p in path.split("/") if p and p != "."]:
            if name == "..":
                return None  # (our own paths have none; never walk up out of the root here)
            walked += "/" + name
            try:
                return walked, os.readlink(name, dir_fd=dirfd)
            except OSError:
                pass  # not a symlink (EINVAL), or missing: go on, or stop below
            try:
                nextfd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC,
                                 dir_fd=dirfd)
            except OSError:
                return None
            os.close(dirfd)
            dirfd = nextfd
        return None
    finally:
        os.close(dirfd)


def ensure_dir(sys: Syscalls, rootfd: int, path: str, mode: int = 0o755,
               no_symlinks: bool = False) -> int:
    """Open directory `path` inside the root, creating missing components; returns an O_PATH fd.
    Each component is created with mkdirat() relative to its parent's fd, never by path string.
    With `no_symlinks`, a symlink anywhere on the path is an error instead of being followed."""
    try:
        return open_in_root(sys, rootfd, path, os.O_PATH | os.O_DIRECTORY, no_symlinks)
    except SyscallError as e:
        if e.errno != errno.ENOENT:
            raise
    parent, name = os.path.split(path.rstrip("/"))
    parent_fd = ensure_dir(sys, rootfd, parent or "/", mode, no_symlinks)
    try:
        try:
            os.mkdir(name, mode, dir_fd=parent_fd)
        except FileExistsError:
            pass  # a dangling symlink or a race: the open below decides
    finally:
        os.close(parent_fd)
    return open_in_root(sys, rootfd, path, os.O_PATH | os.O_DIRECTORY, no_symlinks)


def ensure_file(sys: Syscalls, rootfd: int, path: str) -> int:
    """Open (creating if missing, empty) regular file `path` in the root, for bind-mounting a file
    onto; returns an O_PATH fd. A symlink as the last component is followed inside the root."""
    try:
        return open_in_root(sys, rootfd, path)
    except SyscallError as e:
        if e.errno != errno.ENOENT:
            raise
    parent, name = os.path.split(path.rstrip("/"))
    parent_fd = ensure_dir(sys, rootfd, parent or "/")
    try:
        try:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o644, dir_fd=parent_fd))
        except FileExistsError:
            pass
    finally:
        os.close(parent_fd)
    return open_in_root(sys, rootfd, path)


def check_no_symlink(sys: Syscalls, path: str, why: str) -> os.stat_result | None:
    """stat `path` (absolute, in the current root) refusing symlinks anywhere on it; None if it does
    not exist. Used for masked and read-only paths, which must be exactly the kernel's files."""
    try:
        fd = sys.openat2(AT_FDCWD, path, os.O_PATH, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
    except SyscallError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        if e.errno == errno.ELOOP:
            raise StepError(why, f"refusing: {path} is or goes through a symlink (planted in the image?)") from e
        raise
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def is_dir(st: os.stat_result) -> bool:
    return stat.S_ISDIR(st.st_mode)
