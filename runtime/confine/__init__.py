"""runtime.confine — what the container's process may do: limits, identity, capabilities, seccomp.

Called by the container's init (and by exec'd processes) after the root filesystem is in place,
in this order, each step needing a privilege that a later step gives up:

    1. rlimits, oom_score_adj      (raising limits needs CAP_SYS_RESOURCE)
    2. bounding set                (PR_CAPBSET_DROP needs CAP_SETPCAP)
    3. groups, gid, uid            (identity.py)
    4. capset, ambient             (caps.py) — keeping CAP_SYS_ADMIN until execve if a seccomp
                                   filter is to be installed without no_new_privs (see below)
    5. no_new_privs                (from now on execve can never grant privileges)
    ... the process waits to be started, then, in `finish`:
    6. every fd above 2 marked close-on-exec (close_range), so no runtime fd reaches the container
       (CVE-2024-21626: a leaked fd of the host's cgroup directory let a container escape)
    7. seccomp, always the last step before execve: a profile is written for the container's
       program, not for the runtime, so nothing the runtime does may run under it (an allowlist
       from before 2020 has no close_range, and step 6 would fail with EPERM)
    8. execve

Installing a filter needs no_new_privs or CAP_SYS_ADMIN. Without no_new_privs, runc installs the
filter before dropping capabilities and lets it judge everything the runtime does afterwards. We
keep CAP_SYS_ADMIN in the effective and permitted sets (not in the bounding, inheritable or
ambient sets) until step 7 instead: execve computes the program's capabilities afresh from those
three, so the extra capability ends at execve.

    caps.py  identity.py  seccomp.py

May import: runtime.sys, runtime.spec, runtime.errors, the standard library.
"""

from __future__ import annotations

from runtime.confine import caps, identity
from runtime.spec.model import Process
from runtime.sys import Syscalls
from runtime.sys.consts import CAPABILITIES, CLOSE_RANGE_CLOEXEC


def confine(sys: Syscalls, process: Process, seccomp_program: bytes | None, step) -> None:
    """Steps 1–5 above."""
    with step("set resource limits"):
        identity.set_rlimits(sys, process)
        if process.oom_score_adj is not None:
            identity.set_oom_score_adj(process.oom_score_adj)
    keep = 0
    if seccomp_program is not None and not process.no_new_privileges:
        keep = 1 << CAPABILITIES["CAP_SYS_ADMIN"]
    with step("drop capabilities from the bounding set"):
        caps.drop_bounding(sys, process.capabilities)
    with step(f"switch to uid {process.user.uid} gid {process.user.gid}"):
        identity.switch_user(sys, process)
    with step("set capabilities"):
        caps.set_capabilities(sys, process.capabilities, keep)
    if process.no_new_privileges:
        with step("set no_new_privs"):
            sys.set_no_new_privs()


def finish(sys: Syscalls, process: Process, seccomp_program: bytes | None, executable: str) -> None:
    """Steps 6–8: the last syscalls before the container's program runs. Returns only by raising
    (or under RecordingSyscalls, whose execve returns)."""
    sys.close_range(3, 0xFFFFFFFF, CLOSE_RANGE_CLOEXEC)
    if seccomp_program is not None:
        sys.seccomp_set_filter(seccomp_program)
    sys.execve(executable, process.args, process.env)
