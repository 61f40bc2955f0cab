"""runtime.confine — what the container's process may do: limits, identity, capabilities, seccomp.

Called by the container's init (and by exec'd processes) after the root filesystem is in place,
in this order, each step needing a privilege that a later step gives up:

    1. rlimits, oom_score_adj      (raising limits needs CAP_SYS_RESOURCE)
    2. seccomp, if no_new_privs is off: installing a filter without no_new_privs needs
       CAP_SYS_ADMIN, which step 3 drops — so the filter goes in now, and it must allow the
       few syscalls the remaining steps make (it does: prctl, capset, setresuid, execve, ...)
    3. bounding set                (PR_CAPBSET_DROP needs CAP_SETPCAP)
    4. groups, gid, uid            (identity.py)
    5. capset, ambient             (caps.py)
    6. no_new_privs                (from now on execve can never grant privileges)
    ... the process waits to be started, then, in `finish`:
    7. every fd above 2 marked close-on-exec (close_range), so no runtime fd reaches the container
       (CVE-2024-21626: a leaked fd of the host's cgroup directory let a container escape)
    8. seccomp, if no_new_privs is on: as late as possible, so the filter need not allow the
       runtime's own syscalls
    9. execve

    caps.py  identity.py  seccomp.py

May import: runtime.sys, runtime.spec, runtime.errors, the standard library.
"""

from __future__ import annotations

from runtime.confine import caps, identity
from runtime.spec.model import Process
from runtime.sys import Syscalls
from runtime.sys.consts import CLOSE_RANGE_CLOEXEC


def confine(sys: Syscalls, process: Process, seccomp_program: bytes | None, step) -> None:
    """Steps 1–6 above."""
    with step("set resource limits"):
        identity.set_rlimits(sys, process)
        if process.oom_score_adj is not None:
            identity.set_oom_score_adj(process.oom_score_adj)
    if seccomp_program is not None and not process.no_new_privileges:
        with step("install the seccomp filter"):
            sys.seccomp_set_filter(seccomp_program)
    with step("drop capabilities from the bounding set"):
        caps.drop_bounding(sys, process.capabilities)
    with step(f"switch to uid {process.user.uid} gid {process.user.gid}"):
        identity.switch_user(sys, process)
    with step("set capabilities"):
        caps.set_capabilities(sys, process.capabilities)
    if process.no_new_privileges:
        with step("set no_new_privs"):
            sys.set_no_new_privs()


def finish(sys: Syscalls, process: Process, seccomp_program: bytes | None, executable: str) -> None:
    """Steps 7–9: the last syscalls before the container's program runs. Returns only by raising
    (or under RecordingSyscalls, whose execve returns)."""
    sys.close_range(3, 0xFFFFFFFF, CLOSE_RANGE_CLOEXEC)
    if seccomp_program is not None and process.no_new_privileges:
        sys.seccomp_set_filter(seccomp_program)
    sys.execve(executable, process.args, process.env)
