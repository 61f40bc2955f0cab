"""Local ephemeral storage limits (the kubelet's localStorageEviction, on by default since
LocalStorageCapacityIsolation went GA).

A pod may bound the node-local disk it uses in three places, and the kubelet evicts it — with a
1 s grace period, whatever the node's own signals say — as soon as it is over any of them,
checked in this order:

    emptyDir sizeLimit         the volume's bytes (medium: Memory is a tmpfs of that size
                               already; a disk emptyDir can only be held to it this way)
                               "Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". "
    the pod's limits           the containers' ephemeral-storage limits summed, against the
                               pod's writable layers, logs and emptyDir volumes together
                               "Pod ephemeral local storage usage exceeds the total limit of
                               containers 2Mi. "
    a container's limit        its writable layer and logs
                               "Container c exceeded its local ephemeral storage limit "1Mi". "

Unlike a node-pressure eviction, such a pod gets no DisruptionTarget condition: upstream passes
none (only its alpha PodPendingTerminationConditions would add one).
"""

from __future__ import annotations

from nodeagent.eviction.stats import PodUsage
from nodeagent.resources import QuantityError, bytes_of, format_quantity, is_binary


def _quantity(text) -> tuple[int, bool] | None:
    try:
        return bytes_of(text), is_binary(str(text))
    except QuantityError:
        return None


def limited(pod: dict) -> bool:
    """Could the pod break a local storage limit (is there one to measure it against)?"""
    spec = pod.get("spec") or {}
    if any((v.get("emptyDir") or {}).get("sizeLimit") for v in spec.get("volumes") or []):
        return True
    return any("ephemeral-storage" in ((c.get("resources") or {}).get("limits") or {})
               for c in (spec.get("containers") or []) + (spec.get("initContainers") or []))


def _pod_limit(spec: dict) -> tuple[int, bool] | None:
    """PodLimits' ephemeral-storage: the containers' limits summed (at least any one init
    container's), in the format of the first; None when no container has one."""
    total, binary, found = 0, True, False
    for c in spec.get("containers") or []:
        q = _quantity(((c.get("resources") or {}).get("limits") or {}).get("ephemeral-storage"))
        if q is not None:
            binary = q[1] if not found else binary
            total, found = total + q[0], True
    for c in spec.get("initContainers") or []:
        q = _quantity(((c.get("resources") or {}).get("limits") or {}).get("ephemeral-storage"))
        if q is not None:
            binary = q[1] if not found else binary
            total, found = max(total, q[0]), True
    return (total, binary) if found else None


def violation(pod: dict, usage: PodUsage) -> str | None:
    """The eviction message for the first limit the pod is over, or None."""
    spec = pod.get("spec") or {}
    used = dict(usage.volumes)
    for v in spec.get("volumes") or []:
        size = _quantity((v.get("emptyDir") or {}).get("sizeLimit")) if "emptyDir" in v else None
        if size and size[0] > 0 and used.get(v.get("name"), 0) > size[0]:
            return (f'Usage of EmptyDir volume "{v["name"]}" exceeds the limit '
                    f'"{format_quantity(*size)}". ')
    limit = _pod_limit(spec)
    if limit is not None and (usage.disk or 0) > limit[0]:
        return ("Pod ephemeral local storage usage exceeds the total limit of containers "
                f"{format_quantity(*limit)}. ")
    limits = {c.get("name"): _quantity(((c.get("resources") or {}).get("limits") or {})
                                       .get("ephemeral-storage"))
              for c in spec.get("containers") or []}
    for c in usage.containers:
        q = limits.get(c.name)
        if q and q[0] and (c.rootfs or 0) + (c.logs or 0) > q[0]:
            return (f'Container {c.name} exceeded its local ephemeral storage limit '
                    f'"{format_quantity(*q)}". ')
    return None
