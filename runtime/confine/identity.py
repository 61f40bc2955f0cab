"""Who the container's process is: user and groups, resource limits, OOM score, umask.

Switching user as root: supplementary groups first (setgroups needs CAP_SETGID, and an empty list
also drops the groups the runtime itself had), then the group IDs, then the user IDs last — once
the uid is no longer 0 the process cannot change the others any more. setresuid() away from 0
clears the permitted set, so PR_SET_KEEPCAPS keeps it for the capset that follows (caps.py); the
effective set is recomputed there.

Resource limits are set while we are still root with every capability: raising a hard limit needs
CAP_SYS_RESOURCE. Likewise a negative oom_score_adj.
"""

from __future__ import annotations

import os

from runtime.spec.model import Process
from runtime.sys import Syscalls
from runtime.sys.consts import RLIMITS


def set_rlimits(sys: Syscalls, process: Process) -> None:
    for r in process.rlimits:
        sys.setrlimit(RLIMITS[r.type], r.soft, r.hard)


def set_oom_score_adj(value: int) -> None:
    fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def switch_user(sys: Syscalls, process: Process) -> None:
    u = process.user
    sys.setgroups(u.additional_gids)
    sys.setresgid(u.gid, u.gid, u.gid)
    if u.uid != 0:
        sys.set_keepcaps(True)
        sys.setresuid(u.uid, u.uid, u.uid)
        sys.set_keepcaps(False)
    else:
        sys.setresuid(0, 0, 0)
