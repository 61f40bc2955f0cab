"""Subresources that are views or verbs rather than parts of the object.

- `deployments/<d>/scale`, `replicasets/<r>/scale`: an autoscaling/v1 Scale built from the object
  (spec.replicas, status.replicas, the selector as text); writing it changes only spec.replicas.
  `kubectl scale` and autoscalers use it so they need not know each kind's shape.
- `pods/<p>/eviction`: a delete that a PodDisruptionBudget may refuse (429), see evict().
- `pods/<p>/binding`: the scheduler's decision. It sets spec.nodeName exactly once and records the
  PodScheduled condition; binding an already bound or deleting pod is a 409.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from controlplane.apiserver import fieldmanager, meta
from controlplane.apiserver.errors import APIError, conflict, forbidden, invalid_object, required
from controlplane.apiserver.resources import REGISTRY, ResourceType
from controlplane.apiserver.selectors import selector_from_match, selector_string
from controlplane.apiserver.codec import encode
from controlplane.storage import Conflict

if TYPE_CHECKING:
    from controlplane.apiserver.objects import ObjectStore



def scale_of(rt: ResourceType, obj: dict) -> dict:
    if rt.custom is not None:  # the CRD's specReplicasPath, statusReplicasPath, labelSelectorPath
        return rt.custom.scale_of(obj)
    md = obj["metadata"]
    selector = (obj.get("spec") or {}).get("selector")
    if rt.kind == "ReplicationController":  # a plain map there, a LabelSelector elsewhere
        selector = {"matchLabels": selector or {}}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                             "creationTimestamp") if k in md},
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": selector_string(selector)}}

def set_replicas(rt: ResourceType, obj: dict, replicas: int) -> None:
    """What writing a Scale changes: spec.replicas (a custom resource's specReplicasPath)."""
    if rt.custom is not None:
        rt.custom.set_replicas(obj, replicas)
    else:
        obj.setdefault("spec", {})["replicas"] = replicas


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
        pod = assign(fieldmanager.copy_object(entry.obj))
        if dry_run:
            return
        try:
            await store.storage.update(entry.key, encode(pod), entry.revision)
            return
        except Conflict:
            await store.cache.wait_for(store.storage.revision)
    raise conflict("pods", "", name, "too many concurrent writers; try again")


async def evict(store: ObjectStore, ns: str, name: str, opts) -> None:
    """POST pods/<name>/eviction (upstream's EvictionREST): delete the pod unless that would
    take its PodDisruptionBudget below what it allows.

    A pod that is not running (Pending, finished) or already being deleted goes at once; so does
    one no budget selects. With one budget: a budget the disruption controller has not caught up
    with (observedGeneration behind) or with no disruptions left answers 429 TooManyRequests —
    `kubectl drain` waits and retries; otherwise the allowance is spent (status.disruptionsAllowed
    minus one, the pod recorded in status.disruptedPods so the controller does not count it twice)
    and the pod deleted. A pod selected by two budgets cannot be evicted (500, as upstream)."""
    from controlplane.apiserver.objects import DeleteOptions  # objects imports this module
    pods = REGISTRY.lookup("", "v1", "pods")
    pdbs = REGISTRY.lookup("policy", "v1", "poddisruptionbudgets")
    for _ in range(5):
        pod = store.get(pods, ns, name).obj
        status = pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed", "Pending") or \
                pod["metadata"].get("deletionTimestamp"):
            break
        labels = pod["metadata"].get("labels") or {}
        matching = [e.obj for e in store.cache.list(pdbs.key(ns))[0]
                    if _selects((e.obj.get("spec") or {}).get("selector"), labels)]
        if not matching:
            break
        if len(matching) > 1:
            raise APIError(500, "InternalError", "This pod has more than one PodDisruptionBudget, "
                           "which the eviction subresource does not support.")
        pdb = matching[0]
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in status.get("conditions") or [])
        pst = pdb.get("status") or {}
        if not ready:
            policy = (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
            if policy == "AlwaysAllow" or (pst.get("desiredHealthy", 0) > 0 and
                                           pst.get("currentHealthy", 0) >= pst.get("desiredHealthy", 0)):
                break
        pdb_name = pdb["metadata"]["name"]
        if pst.get("observedGeneration", 0) < pdb["metadata"].get("generation", 0):
            raise _too_many_requests(f"The disruption budget {pdb_name} is still being processed "
                                     f"by the server.", 10)
        allowed = pst.get("disruptionsAllowed", 0)
        if allowed < 0:
            raise forbidden("poddisruptionbudget", "policy", pdb_name,
                            "pdb disruptions allowed is negative")
        if allowed == 0:
            raise _too_many_requests(f"The disruption budget {pdb_name} needs "
                                     f"{pst.get('desiredHealthy', 0)} healthy pods and has "
                                     f"{pst.get('currentHealthy', 0)} currently", 0)
        if opts.dry_run:
            break

        def spend(cur: dict) -> dict:
            st = cur.setdefault("status", {})
            st["disruptionsAllowed"] = st.get("disruptionsAllowed", 0) - 1
            st.setdefault("disruptedPods", {})[name] = meta.now()
            if st["disruptionsAllowed"] == 0:
                conds = [c for c in st.get("conditions") or [] if c.get("type") != "DisruptionAllowed"]
                conds.append({"type": "DisruptionAllowed", "status": "False",
                              "reason": "InsufficientPods", "message": "",
                              "observedGeneration": st.get("observedGeneration", 0),
                              "lastTransitionTime": meta.now()})
                st["conditions"] = conds
            return cur
        try:
            await store.update(pdbs, ns, pdb_name, spend, "status",
                               precondition_rv=pdb["metadata"]["resourceVersion"])
        except APIError as e:
            if e.code == 409:
                continue  # the budget moved under us: decide again on the new one
            raise
        break
    else:
        raise _too_many_requests("The disruption budget is being updated by others; try again.", 1)
    if not opts.dry_run and not (store.get(pods, ns, name).obj["metadata"].get("deletionTimestamp")):
        await _mark_disruption_target(store, pods, ns, name)
    await store.delete(pods, ns, name, opts if isinstance(opts, DeleteOptions) else DeleteOptions())


def _selects(selector: dict | None, labels: dict) -> bool:
    # An empty or missing selector would select every pod; eviction treats it as selecting none.
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return False
    return selector_from_match(selector).matches(labels)


def _too_many_requests(cause: str, retry_after: int) -> APIError:
    details: dict = {"causes": [{"reason": "DisruptionBudget", "message": cause}]}
    if retry_after:
        details["retryAfterSeconds"] = retry_after
    return APIError(429, "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.", details)


async def _mark_disruption_target(store, pods, ns: str, name: str) -> None:
    """The DisruptionTarget condition tells the pod's owner why it went (PodDisruptionConditions)."""
    def mark(cur: dict) -> dict:
        st = cur.setdefault("status", {})
        if (st.get("phase") in ("Succeeded", "Failed")):
            return cur
        conds = [c for c in st.get("conditions") or [] if c.get("type") != "DisruptionTarget"]
        conds.append({"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                      "message": "Eviction API: evicting", "lastProbeTime": None,
                      "lastTransitionTime": meta.now()})
        st["conditions"] = conds
        return cur
    try:
        await store.update(pods, ns, name, mark, "status")
    except APIError as e:
        if e.code != 404:
            raise
