"""The recording syscall fake, with real file descriptors: for driving the root filesystem's steps
without root.

RecordingSyscalls records every privileged call and performs none. The rootfs code, though, opens
each mount point through Syscalls.openat2 and then uses the fd with ordinary os calls (mkdirat,
close): so here openat2 is recorded *and* done (as a plain openat relative to the directory fd,
on a tree under a temporary directory), while mount, mknod, pivot_root, ... stay recorded only.
"""

from __future__ import annotations

import os

from runtime.sys import RecordingSyscalls, SyscallError


class RecordingWithFds(RecordingSyscalls):
    def openat2(self, dirfd: int, path: str, flags: int, resolve: int = 0, mode: int = 0) -> int:
        self._record("openat2", dirfd, path, flags, resolve, mode)
        try:
            return os.open(path, flags | os.O_CLOEXEC, mode, dir_fd=dirfd)
        except OSError as e:
            raise SyscallError(e.errno, "openat2", (path,)) from None
