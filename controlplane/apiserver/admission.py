"""Admission: the checks and changes that need other objects, between decoding and storing.

kube-apiserver runs admission plugins after defaulting and before validation. The ones here are
those whose answers users meet on every cluster (plugin/pkg/admission/...):

- **Priority** (pods, on create): `spec.priority` comes from the PriorityClass named by
  `spec.priorityClassName`, or from the class marked `globalDefault` (then its name is filled in
  too), else 0; `spec.preemptionPolicy` likewise. Naming a class that does not exist is 403, and
  so is a pod that states an integer priority different from its class's.
- **Priority** (priorityclasses): at most one class may be `globalDefault` (403 otherwise); the
  two system classes cannot be deleted (403).
- ServiceAccount and DefaultTolerationSeconds only fill fields, so they live with defaulting
  (defaults.pod_spec).

Each function reads the watch cache (what the API server has committed), as upstream's plugins
read their informers.
"""

from __future__ import annotations

from controlplane.apiserver.errors import forbidden
from controlplane.apiserver.validation import SYSTEM_PRIORITY_CLASSES
from controlplane.storage.watchcache import WatchCache

_CLASSES = "/registry/priorityclasses/"


def _default_class(cache: WatchCache) -> dict | None:
    """The globalDefault class; with several (possible only by racing creates), the lowest, as
    upstream picks."""
    found = [e.obj for e in cache.list(_CLASSES)[0] if e.obj.get("globalDefault")]
    return min(found, key=lambda o: o.get("value", 0)) if found else None


def pod_priority(pod: dict, cache: WatchCache) -> None:
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    name = (pod.get("metadata") or {}).get("name", "")
    class_name = spec.get("priorityClassName")
    policy = None
    if not class_name:
        pc = _default_class(cache)
        if pc is not None:
            spec["priorityClassName"] = pc["metadata"]["name"]
            priority, policy = pc.get("value", 0), pc.get("preemptionPolicy")
        else:
            priority, policy = 0, "PreemptLowerPriority"
    else:
        e = cache.get(_CLASSES + class_name)
        if e is None:
            raise forbidden("pods", "", name, f"no PriorityClass with name {class_name} was found")
        priority, policy = e.obj.get("value", 0), e.obj.get("preemptionPolicy")
    if spec.get("priority") is not None and spec["priority"] != priority:
        raise forbidden("pods", "", name, f"the integer value of priority ({spec['priority']}) must "
                        f"not be provided in pod spec; priority admission controller computed "
                        f"{priority} from the given PriorityClass name")
    spec["priority"] = priority
    if policy is not None:
        if spec.get("preemptionPolicy") is not None and spec["preemptionPolicy"] != policy:
            raise forbidden("pods", "", name, f"the string value of PreemptionPolicy "
                            f"({spec['preemptionPolicy']}) must not be provided in pod spec; priority "
                            f"admission controller computed {policy} from the given PriorityClass name")
        spec["preemptionPolicy"] = policy


def priority_class_write(pc: dict, cache: WatchCache) -> None:
    if not pc.get("globalDefault"):
        return
    name = (pc.get("metadata") or {}).get("name", "")
    current = _default_class(cache)
    if current is not None and current["metadata"]["name"] != name:
        raise forbidden("priorityclasses", "scheduling.k8s.io", name,
                        f"PriorityClass {current['metadata']['name']} is already marked as default. "
                        f"Only one default can exist")


def priority_class_delete(name: str) -> None:
    if name in SYSTEM_PRIORITY_CLASSES:
        raise forbidden("priorityclasses", "scheduling.k8s.io", name,
                        "this is a system priority class and cannot be deleted")


def system_priority_classes() -> list[dict]:
    """The classes the API server creates at start (scheduling.SystemPriorityClasses)."""
    return [{"metadata": {"name": "system-node-critical"}, "value": 2000001000,
             "description": "Used for system critical pods that must not be moved from their "
                            "current node."},
            {"metadata": {"name": "system-cluster-critical"}, "value": 2000000000,
             "description": "Used for system critical pods that must run in the cluster, but "
                            "can be moved to another node if necessary."}]
