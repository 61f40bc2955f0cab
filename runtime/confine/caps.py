"""Capabilities: which of root's ~41 powers the container's process keeps.

A thread has five capability sets (capabilities(7)):

    bounding     the ceiling: nothing outside it can ever be gained again, not even by execve of a
                 setuid-root or file-capability program. Dropped with PR_CAPBSET_DROP.
    permitted    what the thread may use (raise into effective).
    effective    what the kernel checks right now.
    inheritable  what may pass through execve to programs carrying file inheritable capabilities.
    ambient      what passes through execve of *ordinary* programs (for non-root users).

Order matters, because each step needs a capability the next one may remove: drop from the
bounding set first (needs CAP_SETPCAP), then switch user (needs CAP_SETUID/SETGID; identity.py),
then set effective/permitted/inheritable with capset(2), then the ambient set (whose members
must be permitted and inheritable).

The inheritable set stays empty unless the spec asks: CVE-2022-24769 was runtimes putting the
default set into "inheritable", so a program with file inheritable capabilities gained them
inside the container.
"""

from __future__ import annotations

from runtime.spec.model import Capabilities
from runtime.sys import CapSets, Syscalls
from runtime.sys.caps import mask_of
from runtime.sys.consts import CAP_LAST_CAP


def _kernel_last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return CAP_LAST_CAP


def drop_bounding(sys: Syscalls, caps: Capabilities) -> None:
    """Drop every capability the kernel knows that is not to be kept. Dropping one that is already
    gone succeeds, so there is no need to read the set first (one prctl per cap instead of two)."""
    keep = mask_of(caps.bounding)
    for cap in range(min(_kernel_last_cap(), 63) + 1):
        if not keep >> cap & 1:
            sys.capbset_drop(cap)


def set_capabilities(sys: Syscalls, caps: Capabilities, keep_until_execve: int = 0) -> None:
    """capset, then the ambient set. The kernel only lets a capability into the ambient set if it is
    both permitted and inheritable; `runc spec` writes ambient caps with an empty inheritable set,
    and runc skips those with a warning — so do we (they could never be raised).

    `keep_until_execve`: capabilities (a mask) kept in effective and permitted beyond the spec's,
    for the runtime's own last step (CAP_SYS_ADMIN to install a seccomp filter without
    no_new_privs). execve recomputes permitted and effective from the bounding, inheritable and
    ambient sets (and file capabilities, themselves capped by the bounding set), never from the
    old permitted set, so the extra ones do not reach the container's program."""
    from runtime.sys.consts import CAPABILITIES

    wanted = CapSets(effective=mask_of(caps.effective) | keep_until_execve,
                     permitted=mask_of(caps.permitted) | keep_until_execve,
                     inheritable=mask_of(caps.inheritable))
    try:
        sys.capset(wanted)
    except OSError as e:
        import errno
        if e.errno != errno.EPERM:
            raise
        # The usual reason: the spec grants a capability the runtime itself does not hold (a
        # sandbox or an outer container dropped it). Say which, naming the field.
        held = sys.capget()
        missing = (wanted.permitted | wanted.inheritable) & ~held.permitted
        if not missing:
            raise
        from runtime.errors import SpecError
        from runtime.sys.caps import names_of
        raise SpecError("process.capabilities", f"{', '.join(names_of(missing))}: not held by the "
                        "runtime itself, so it cannot be granted") from e
    sys.ambient_clear_all()
    raisable = mask_of(caps.permitted) & mask_of(caps.inheritable)
    for name in caps.ambient:
        if raisable >> CAPABILITIES[name] & 1:
            sys.ambient_raise(CAPABILITIES[name])
