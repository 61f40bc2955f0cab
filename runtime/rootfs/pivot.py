"""pivot_root: make the container's root filesystem "/" and let go of the host's.

chroot(2) only changes where path lookups start for one process; the old root stays mounted and
reachable (a process with CAP_SYS_CHROOT can chroot("..") its way out). pivot_root(2) instead
changes the root *mount* of the whole mount namespace: the new root becomes "/", the old one is
moved to a directory below it, and we then unmount (detach) that old root so nothing of the host's
file tree remains in the namespace at all.

The runc trick used here needs no scratch directory: chdir into the new root and call
pivot_root(".", "."). The old root is then stacked *on top of* the new one at "/"; we fchdir back
to it (we kept an fd), mark it rslave so the unmount does not propagate anywhere, and detach it
with umount2(".", MNT_DETACH). What remains at "/" is the container's root.
"""

from __future__ import annotations

import os

from runtime.sys import Syscalls
from runtime.sys.consts import MNT_DETACH, MS_REC, MS_SLAVE


def pivot_root(sys: Syscalls, new_root: str) -> None:
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(new_root, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        sys.pivot_root(".", ".")
        os.fchdir(old)
        sys.mount(None, ".", None, MS_SLAVE | MS_REC)
        sys.umount2(".", MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(old)
        os.close(new)
