"""Subresources that are views or verbs rather than parts of the object.

- `deployments/<d>/scale`, `replicasets/<r>/scale`: an autoscaling/v1 Scale built from the object
  (spec.replicas, status.replicas, the selector as text); writing it changes only spec.replicas.
  `kubectl scale` and autoscalers use it so they need not know each kind's shape.
- `pods/<p>/binding`: the scheduler's decision. It sets spec.nodeName exactly once and records the
  PodScheduled condition; binding an already bound or deleting pod is a 409.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from controlplane.apiserver import meta
from controlplane.apiserver.errors import conflict, invalid_object, required
from controlplane.apiserver.resources import REGISTRY, ResourceType
from controlplane.apiserver.selectors import selector_string
from controlplane.apiserver.codec import encode
from controlplane.storage import Conflict

if TYPE_CHECKING:
    from controlplane.apiserver.objects import ObjectStore



def scale_of(rt: ResourceType, obj: dict) -> dict:
    md = obj["metadata"]
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                             "creationTimestamp") if k in md},
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": selector_string((obj.get("spec") or {}).get("selector"))}}

async def bind(store: ObjectStore, ns: str, name: str, binding: dict, dry_run: bool) -> None:
    """POST pods/<name>/binding: the scheduler's decision. Sets spec.nodeName once."""
    target = binding.get("target") or {}
    node = target.get("name")
    if not node:
        raise invalid_object("Binding", "", name, [required("target.name")])
    pods = REGISTRY.lookup("", "v1", "pods")

    def assign(pod: dict) -> dict:
        spec = pod.setdefault("spec", {})
        if spec.get("nodeName"):
            raise conflict("pods", "", name, f"pod {name} is already assigned to node "
                           f"\"{spec['nodeName']}\"")
        if pod["metadata"].get("deletionTimestamp"):
            raise conflict("pods", "", name, f"pod {name} is being deleted, cannot be assigned "
                           f"to a host")
        spec["nodeName"] = node
        conds = [c for c in (pod.get("status") or {}).get("conditions") or []
                 if c.get("type") != "PodScheduled"]
        conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                      "lastTransitionTime": meta.now()})
        pod.setdefault("status", {})["conditions"] = conds
        return pod

    # Binding changes spec and status together, which no client verb may: go under them.
    for _ in range(20):
        entry = store.get(pods, ns, name)
        pod = assign(copy.deepcopy(entry.obj))
        if dry_run:
            return
        try:
            await store.storage.update(entry.key, encode(pod), entry.revision)
            return
        except Conflict:
            await store.cache.wait_for(store.storage.revision)
    raise conflict("pods", "", name, "too many concurrent writers; try again")
