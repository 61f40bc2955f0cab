"""Which pod goes first, and what its status says (pkg/kubelet/eviction/helpers.go).

The kubelet sorts the active pods with one comparison per signal, each a chain of keys — a key
decides only where the ones before it tie:

    memory (rankMemoryPressure)   1. pods whose memory use exceeds their request (a pod with no
                                     stats at all counts as first of all)
                                  2. lower spec.priority first
                                  3. more memory used above the request first
    disk (rankDiskPressureFunc)   the same three, with the pod's disk use (writable layers, logs,
                                  emptyDir volumes) or its inodes, against ephemeral-storage
    pids (rankPIDPressure)        1. lower priority first  2. more processes first

QoS is not a key of its own: a BestEffort pod requests nothing, so any use exceeds its request
and it sorts with the over-users. The eviction message names the resource, the threshold and
what was observed, then every container using more than it requested:

    The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki.
    Container c was using 120Mi, request is 0, has larger consumption of memory.

(each sentence ending in ". ", as upstream's format strings do).
"""

from __future__ import annotations

from nodeagent.eviction.stats import Observation, PodUsage
from nodeagent.eviction.thresholds import Threshold
from nodeagent.resources import QuantityError, bytes_of, format_quantity, is_binary

# kubelettypes.IsCriticalPod: scheduling.SystemCriticalPriority and above, or a mirror pod
SYSTEM_CRITICAL_PRIORITY = 2_000_000_000


def is_critical(pod: dict) -> bool:
    md, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    if "kubernetes.io/config.mirror" in (md.get("annotations") or {}):
        return True
    return (spec.get("priority") or 0) >= SYSTEM_CRITICAL_PRIORITY


def _request(container: dict, resource: str) -> int:
    res = container.get("resources") or {}
    # an absent request defaults to the limit (the API server's defaulting)
    value = (res.get("requests") or {}).get(resource, (res.get("limits") or {}).get(resource))
    try:
        return bytes_of(value) if value is not None else 0
    except QuantityError:
        return 0


def pod_request(pod: dict, resource: str) -> int:
    """GetResourceRequestQuantity: the containers' requests summed, at least any one init
    container's, plus the pod overhead."""
    spec = pod.get("spec") or {}
    total = sum(_request(c, resource) for c in spec.get("containers") or [])
    for c in spec.get("initContainers") or []:
        total = max(total, _request(c, resource))
    overhead = (spec.get("overhead") or {}).get(resource)
    return total + (bytes_of(overhead) if overhead else 0)


def _priority(pod: dict) -> int:
    return (pod.get("spec") or {}).get("priority") or 0


def _usage(resource: str, u: PodUsage) -> int:
    if resource == "memory":
        return u.memory or 0
    return (u.inodes if resource == "inodes" else u.disk) or 0


def rank(pods: list[dict], resource: str, stats: dict[str, PodUsage]) -> list[dict]:
    """The pods in the order the kubelet would evict them for `resource`."""
    def key(pod: dict) -> tuple:
        u = stats.get(pod["metadata"]["uid"])
        if resource == "pids":
            return (_priority(pod), u is not None, -(u.processes or 0) if u else 0)
        if u is None:                                   # no stats: evicted first
            return (False, False, _priority(pod), 0)
        used = _usage(resource, u)
        # the disk comparison subtracts the ephemeral-storage request even for inodes (upstream)
        request = pod_request(pod, "memory" if resource == "memory" else "ephemeral-storage")
        exceeds = used > pod_request(pod, resource)
        return (True, not exceeds, _priority(pod), -(used - request))
    return sorted(pods, key=key)


# --- the message ------------------------------------------------------------------------------------
def _request_text(container: dict, resource: str) -> str:
    """The container's request as its Quantity prints ("0" when it has none)."""
    res = container.get("resources") or {}
    value = (res.get("requests") or {}).get(resource, (res.get("limits") or {}).get(resource))
    if value is None:
        return "0"
    try:
        return format_quantity(bytes_of(value), is_binary(str(value)))
    except QuantityError:
        return str(value)


def message(resource: str, pod: dict, usage: PodUsage | None, thresholds: list[Threshold],
            observations: dict[str, Observation]) -> str:
    """evictionMessage: the node part, then the containers using more than they request."""
    text = f"The node was low on resource: {resource}. "
    for t in thresholds:                                 # getThresholdMetInfo: the first one
        if t.resource == resource and t.signal in observations:
            obs = observations[t.signal]
            text += f"Threshold quantity: {t.value.text(obs.capacity)}, available: {obs.text()}. "
            break
    if usage is None:
        return text
    spec = pod.get("spec") or {}
    # regular and init containers: ephemeral ones cannot ask for resources, so are never named
    containers = {c.get("name"): c
                  for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])}
    for cu in usage.containers:
        c = containers.get(cu.name)
        if c is None:
            continue
        if resource == "memory":
            used = cu.memory
        elif resource == "ephemeral-storage" and cu.rootfs is not None and cu.logs is not None:
            used = cu.rootfs + cu.logs
        else:
            used = None
        if used is not None and used > _request(c, resource):
            text += (f"Container {cu.name} was using {format_quantity(used)}, request is "
                     f"{_request_text(c, resource)}, has larger consumption of {resource}. ")
    return text


def eviction_grace(pod: dict, threshold: Threshold, max_pod_grace: int) -> float:
    """The grace period an evicted pod is killed with.

    hard   immediateEvictionGracePeriodSeconds, 1 s.
    soft   min(--eviction-max-pod-grace-period, the pod's terminationGracePeriodSeconds), as
           the pod worker then reads it (calculateEffectiveGracePeriod): an override of 0 means
           "the pod's own", and no kill gets less than 1 s.
    """
    if threshold.hard:
        return 1.0
    own = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
    override = max_pod_grace if own is None else min(max_pod_grace, own)
    grace = override if override != 0 else (own or 0)
    return float(max(grace, 1))
