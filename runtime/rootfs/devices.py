"""/dev inside the container: a fresh tmpfs holding exactly the devices a program expects.

The host's /dev has disks, the console, /dev/mem... none of which a container should see. So /dev is
a small tmpfs (mounted from config.json), and we create in it only:

    null zero full random urandom tty      character devices, mknod'ed with mode 0666
    pts/                                   a private devpts instance ("newinstance"), so the
    ptmx -> pts/ptmx                       container's ptys are numbered from 0 and invisible outside
    shm/ mqueue/                           POSIX shared memory and message queues (mounted by spec)
    fd -> /proc/self/fd, stdin/stdout/stderr -> /proc/self/fd/0,1,2

plus any extra device config.json lists. Creating a node is only half of access: the device cgroup
(runtime/cgroups) decides whether it may be opened.

Nodes are made with the container's init umask at 0, through the /dev directory's fd (paths.py), so
a symlinked /dev in the image cannot send them elsewhere.
"""

from __future__ import annotations

import os
import stat

from runtime.rootfs.paths import ensure_dir, fd_path, open_in_root
from runtime.spec.model import Device
from runtime.sys import Syscalls
from runtime.sys.consts import MS_BIND

DEFAULT_DEVICES: tuple[tuple[str, int, int], ...] = (
    ("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0),
)

SYMLINKS: tuple[tuple[str, str], ...] = (
    ("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"), ("pts/ptmx", "ptmx"),
)


# Not device nodes of the host's to copy: other filesystems, and the container's own (runc's
# devices.HostDevices skips the same)
_HOST_SKIP = ("pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev", "console")


def host_devices(root: str = "/dev") -> tuple[Device, ...]:
    """Every character and block device under the host's /dev — what a privileged container gets
    (runc's HostDevices, which containerd adds for `privileged`) — but those /dev always has."""
    defaults = {f"/dev/{name}" for name, _, _ in DEFAULT_DEVICES} | {f"/dev/{n}" for _, n in SYMLINKS}
    out: list[Device] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not (dirpath == root and d in _HOST_SKIP)]
        for name in filenames:
            if dirpath == root and name in _HOST_SKIP:
                continue
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue                        # gone meanwhile
            kind = "c" if stat.S_ISCHR(st.st_mode) else "b" if stat.S_ISBLK(st.st_mode) else None
            container_path = "/dev" + path[len(root):]
            if kind is None or container_path in defaults:
                continue
            out.append(Device(container_path, kind, os.major(st.st_rdev), os.minor(st.st_rdev),
                              stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid))
    return tuple(out)


def populate_dev(sys: Syscalls, rootfd: int, extra: tuple[Device, ...] = (),
                 defaults: bool = True, bind: bool = False) -> None:
    """Create the default nodes and links (when /dev is our tmpfs) and the spec's extra devices.
    `bind`: in a user namespace, where mknod of a device is refused (EPERM: a device node is a
    door to the host's hardware, which only the host's root may open), bind the host's node onto
    an empty file instead, as runc does."""
    if defaults:
        devfd = open_in_root(sys, rootfd, "/dev", os.O_PATH | os.O_DIRECTORY, no_symlinks=True)
        try:
            here = fd_path(devfd)
            for name, major, minor in DEFAULT_DEVICES:
                if bind:
                    _bind_node(sys, f"/dev/{name}", f"{here}/{name}")
                else:
                    sys.mknod(f"{here}/{name}", stat.S_IFCHR | 0o666, os.makedev(major, minor))
            for target, name in SYMLINKS:
                os.symlink(target, f"{here}/{name}")
        finally:
            os.close(devfd)
    for d in extra:
        parent, name = os.path.split(d.path)
        pfd = ensure_dir(sys, rootfd, parent, no_symlinks=True)
        try:
            # "u" is an unbuffered character device (the same node as "c"); "p" a FIFO.
            kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[d.type]
            path = f"{fd_path(pfd)}/{name}"
            if bind and kind != stat.S_IFIFO:
                _bind_node(sys, d.path, path)
                continue
            sys.mknod(path, kind | (d.file_mode & 0o7777), os.makedev(d.major, d.minor))
            os.chown(path, d.uid, d.gid, follow_symlinks=False)
        finally:
            os.close(pfd)


def _bind_node(sys: Syscalls, host: str, path: str) -> None:
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600))
    sys.mount(host, path, None, MS_BIND)
