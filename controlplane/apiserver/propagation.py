"""propagationPolicy on DELETE: what happens to an object's dependents, told to the garbage
collector (controlplane/controllers/garbagecollector.py) through two finalizers.

    Background (the default for every kind we serve)  the object goes now; the GC then deletes
                                                     the dependents whose owners are all gone
    Foreground   finalizer `foregroundDeletion`      the object stays (deletionTimestamp set)
                                                     until the GC has deleted every dependent
                                                     that blocks it (blockOwnerDeletion: true)
    Orphan       finalizer `orphan`                  the object stays until the GC has removed
                                                     its ownerReference from every dependent

The same rule as the kube-apiserver's deletionFinalizersForGarbageCollection: both finalizers are
taken off, then the one the policy asks for is put back — so a second DELETE may change its mind
(orphan → foreground) while the object waits. With no policy, a finalizer already there stays.
The deprecated `orphanDependents: true` means Orphan.
"""

from __future__ import annotations

from controlplane.apiserver.errors import invalid_object, not_supported

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
POLICIES = ("Foreground", "Background", "Orphan")


def check(policy: str | None, orphan_dependents: bool | None = None) -> str | None:
    """The effective policy, or 422 naming the field (ValidateDeleteOptions)."""
    if policy is not None and policy not in POLICIES:
        raise invalid_object("DeleteOptions", "meta.k8s.io", "", [
            not_supported("propagationPolicy", policy, [*POLICIES, "nil"])])
    if orphan_dependents is not None and policy is not None:
        raise invalid_object("DeleteOptions", "meta.k8s.io", "", [
            not_supported("propagationPolicy", policy, ["nil"])])
    if orphan_dependents is not None:
        return "Orphan" if orphan_dependents else "Background"
    return policy


def finalizers(current: list[str] | None, policy: str | None) -> list[str]:
    """The object's finalizers after a DELETE with this (checked) policy."""
    current = list(current or [])
    orphan = policy == "Orphan" if policy else ORPHAN in current
    foreground = policy == "Foreground" if policy else FOREGROUND in current
    out = [f for f in current if f not in (ORPHAN, FOREGROUND)]
    if orphan:
        out.append(ORPHAN)
    if foreground:
        out.append(FOREGROUND)
    return out
