"""Building the container's mount tree, before pivot_root: the root itself, then the spec's mounts.

Runs in the container's init, in its brand-new mount namespace (a copy of the host's mount table).
The order matters and is the order runc uses:

1. Make every mount in the copy private (or slave): otherwise mounts we add would propagate back
   into the host's namespace through shared peer groups (systemd makes "/" shared).
2. Mount the root: an overlay of the image's layers (read-only lowerdirs, topmost first) with this
   container's upperdir — where its writes go — and workdir (overlayfs's scratch space, same
   filesystem as upperdir); or, for a plain bundle, bind the rootfs directory onto itself, because
   pivot_root needs the new root to be a mount point.
3. Each mount of config.json in order (/proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys,
   /sys/fs/cgroup, then volumes and /etc/hosts-style binds). Destinations are resolved *inside* the
   new root (paths.py). A bind mount's flags (ro, nosuid, ...) need a second "remount" call: the
   kernel ignores them on the first MS_BIND.

Overlay whiteouts, for the curious: deleting /etc/motd in the container cannot touch the read-only
layer, so overlayfs records the deletion in the upperdir as a 0:0 character device named motd (a
"whiteout"), and a directory that replaces one below is marked "opaque" with an xattr. The same
trick is how image layers record deletions in their tar files (.wh.motd).
"""

from __future__ import annotations

import os
import stat

from runtime.errors import StepError
from runtime.rootfs.options import PER_MOUNT_FLAGS, parse
from runtime.rootfs.paths import ensure_dir, ensure_file, fd_path, open_in_root
from runtime.spec.model import ContainerSpec, Mount
from runtime.sys import Syscalls
from runtime.sys.consts import (MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY,
                                MS_REC, MS_REMOUNT, MS_SHARED, MS_SLAVE, MS_UNBINDABLE)

# Destinations that must be real directories of the image, never symlinks (runc refuses them too:
# a /proc symlink would let the image decide where procfs and its masks land).
_NO_SYMLINK_TYPES = {"proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue"}

_PROPAGATION = {
    None: MS_PRIVATE | MS_REC, "rprivate": MS_PRIVATE | MS_REC, "private": MS_PRIVATE,
    "rslave": MS_SLAVE | MS_REC, "slave": MS_SLAVE, "rshared": MS_SHARED | MS_REC,
    "shared": MS_SHARED, "runbindable": MS_UNBINDABLE | MS_REC, "unbindable": MS_UNBINDABLE,
}


def make_private(sys: Syscalls, propagation: str | None) -> None:
    sys.mount(None, "/", None, _PROPAGATION[propagation])


def make_parent_private(sys: Syscalls, rootfs: str) -> None:
    """pivot_root(2) fails with EINVAL when the new root's parent mount, or the current root, is
    shared. With rootfsPropagation "shared" both are, so — as runc does (rootfsParentMountPrivate)
    — the mount holding the rootfs directory is made private before the root is bound onto
    itself; the propagation asked for is given to the new "/" after pivot_root instead
    (root_propagation_after_pivot)."""
    best, shared = "", False
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.partition(" - ")[0].split()
            point = fields[4].encode().decode("unicode_escape") if "\\" in fields[4] else fields[4]
            inside = rootfs == point or rootfs.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, shared = point, any(x.startswith("shared:") for x in fields[6:])
    if shared:
        sys.mount(None, best, None, MS_PRIVATE)


def detach_root(sys: Syscalls, rootfs: str) -> None:
    """A container without a mount namespace of its own built its root in ours (the bind or
    overlay mount of its root, its /proc, /dev, ... below): detach it all at once, when the
    container is deleted. Nothing to do if it is not mounted (any more)."""
    from runtime.sys.consts import MNT_DETACH

    with open("/proc/self/mountinfo") as f:
        mounted = any(line.split()[4] == rootfs for line in f)
    if mounted:
        sys.umount2(rootfs, MNT_DETACH)


def root_propagation_after_pivot(sys: Syscalls, propagation: str | None) -> None:
    """The spec's rootfsPropagation for the container's "/" itself: it is a new (bind or overlay)
    mount, made after make_private, so it must be given the propagation again (as runc does)."""
    if propagation is not None:
        sys.mount(None, "/", None, _PROPAGATION[propagation])


def overlay_data(layers: tuple[str, ...], upper: str, work: str) -> str:
    """The overlay mount's data string; ':' separates lowerdirs and ',' options, so paths holding
    either are refused rather than escaped."""
    for p in (*layers, upper, work):
        if ":" in p or "," in p:
            raise StepError("mount the root filesystem", f"overlay path {p!r} contains ':' or ','")
    return f"lowerdir={':'.join(layers)},upperdir={upper},workdir={work}"


def mount_root(sys: Syscalls, spec: ContainerSpec, rootfs: str, upper: str | None,
               work: str | None) -> None:
    if spec.root.layers:
        sys.mount("overlay", rootfs, "overlay", 0, overlay_data(spec.root.layers, upper, work))
    else:
        sys.mount(rootfs, rootfs, None, MS_BIND | MS_REC)


def mount_all(sys: Syscalls, rootfd: int, spec: ContainerSpec, cgroup, cgroup_ns: bool,
              step, cgroup_ready) -> tuple[bool, list[Mount]]:
    """Mount config.json's mounts in order. Returns whether /dev is a tmpfs we mounted (so ours to
    fill), and the cgroup mounts left for after pivot_root.

    Why leave them: moving a process into a cgroup v1 hierarchy waits for an RCU grace period,
    tens of milliseconds that the supervisor spends doing it *for* us while we build the root
    filesystem. Only the cgroup namespace and the cgroup mount need that move to be finished, so
    they wait (`cgroup_ready`) until the end — unless a later mount lies below the cgroup mount.
    Without a cgroup namespace nothing waits: the host's cgroup directories are bound in place,
    which does not depend on our membership (and must happen before pivot_root hides them)."""
    dev_is_ours = False
    deferred: list[Mount] = []
    for i, m in enumerate(spec.mounts):
        if m.type == "cgroup" and cgroup_ns:
            below = m.destination.rstrip("/") + "/"
            if not any(n.destination.startswith(below) for n in spec.mounts[i + 1:]):
                deferred.append(m)
                continue
            cgroup_ready()
        with step(f"mount {m.destination} ({m.type or 'bind'})"):
            if m.type == "cgroup":
                mount_cgroup(sys, rootfd, m, cgroup, cgroup_ns)
            else:
                mount_one(sys, rootfd, m)
        if m.destination.rstrip("/") == "/dev" and m.type == "tmpfs":
            dev_is_ours = True
    return dev_is_ours, deferred


def mount_one(sys: Syscalls, rootfd: int, m: Mount) -> None:
    opts = parse(m.options)
    if opts.is_bind or m.type == "bind":
        _bind(sys, rootfd, m.source, m.destination, opts.flags | MS_BIND)
    else:
        fd = ensure_dir(sys, rootfd, m.destination, no_symlinks=m.type in _NO_SYMLINK_TYPES)
        try:
            sys.mount(m.source or m.type, fd_path(fd), m.type, opts.flags, opts.data)
        finally:
            os.close(fd)
    if opts.propagation:
        fd = open_in_root(sys, rootfd, m.destination)
        try:
            sys.mount(None, fd_path(fd), None, opts.propagation)
        finally:
            os.close(fd)


def _bind(sys: Syscalls, rootfd: int, source: str | None, destination: str, flags: int) -> None:
    if not source:
        raise StepError(f"mount {destination}", "a bind mount needs a source")
    try:
        st = os.stat(source)
    except OSError as e:
        raise StepError(f"mount {destination}", f"bind source {source}: {e.strerror}") from e
    fd = (ensure_dir if stat.S_ISDIR(st.st_mode) else ensure_file)(sys, rootfd, destination)
    try:
        sys.mount(source, fd_path(fd), None, flags & (MS_BIND | MS_REC))
    finally:
        os.close(fd)
    if flags & PER_MOUNT_FLAGS:
        # Re-resolve: the path now leads onto the new bind mount, which is the one to remount.
        fd = open_in_root(sys, rootfd, destination)
        try:
            sys.mount(None, fd_path(fd), None, MS_BIND | MS_REMOUNT | (flags & PER_MOUNT_FLAGS))
        finally:
            os.close(fd)


def mount_cgroup(sys: Syscalls, rootfd: int, m: Mount, cgroup, cgroup_ns: bool) -> None:
    """/sys/fs/cgroup as the container should see it. With a cgroup namespace, mounting the cgroup
    filesystem shows the container's own cgroup as the root; without one we bind its directories."""
    opts = parse(m.options)
    flags = opts.flags
    views = cgroup.container_mounts() if cgroup is not None else []
    if len(views) == 1 and views[0][1] == "":            # v2: one hierarchy at /sys/fs/cgroup itself
        fstype = views[0][0]
        if cgroup_ns:
            fd = ensure_dir(sys, rootfd, m.destination, no_symlinks=True)
            try:
                sys.mount("cgroup", fd_path(fd), fstype, flags, None)
            finally:
                os.close(fd)
        else:
            _bind(sys, rootfd, str(cgroup.dirs["unified"]), m.destination, MS_BIND | flags)
        return
    # v1 / hybrid: a tmpfs holding one directory per hierarchy, made read-only at the end.
    fd = ensure_dir(sys, rootfd, m.destination, no_symlinks=True)
    try:
        sys.mount("tmpfs", fd_path(fd), "tmpfs", flags & ~MS_RDONLY, "mode=755")
    finally:
        os.close(fd)
    for fstype, sub, data in views:
        dest = f"{m.destination.rstrip('/')}/{sub}"
        if cgroup_ns:
            sfd = ensure_dir(sys, rootfd, dest, no_symlinks=True)
            try:
                sys.mount("cgroup", fd_path(sfd), fstype, flags, data or None)
            finally:
                os.close(sfd)
        else:
            _bind(sys, rootfd, str(cgroup.dirs[sub]), dest, MS_BIND | flags)
    if flags & MS_RDONLY:
        fd = open_in_root(sys, rootfd, m.destination, no_symlinks=True)
        try:
            sys.mount(None, fd_path(fd), None,
                      MS_REMOUNT | MS_BIND | MS_RDONLY | (flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC)))
        finally:
            os.close(fd)
