"""The disruption controller: keep every PodDisruptionBudget's status saying how many of its pods
may be disrupted now — what the API server's eviction (`kubectl drain`) and the scheduler's
preemption read.

For each budget, from the pods its selector picks in its namespace (a missing selector picks
none, an empty one every pod), as upstream's trySync:

    expectedPods     minAvailable as a number: the pods found; otherwise the scale of their
                     controllers (a ReplicaSet counts as its Deployment), each counted once —
                     pods without a controller count for nothing there ("unmanaged")
    desiredHealthy   minAvailable (a percentage of expectedPods, rounded up), or
                     expectedPods - maxUnavailable (a percentage rounded up), never below 0
    currentHealthy   pods Ready, not being deleted and not already in disruptedPods
    disruptionsAllowed  currentHealthy - desiredHealthy, never below 0 (0 with no expected pods)

`status.disruptedPods` holds pods the eviction API has let go (it writes them there as it spends
an allowance) that may not have been deleted yet; an entry is dropped once its pod is gone or
being deleted, or after two minutes (upstream's DeletionTimeout) when the eviction evidently did
not happen. The condition DisruptionAllowed says True/SufficientPods or False/InsufficientPods;
a budget whose numbers cannot be computed (a percentage over a pod with no controller) gets
disruptionsAllowed 0 and False/SyncFailed with the reason.
"""

from __future__ import annotations

import math
import time

from apiclient import DEPLOYMENTS, PODS, REPLICASETS, Conflict, NotFound, Resource

from controlplane.controllers.base import Context, Controller
from controlplane.controllers.meta import (
    STATEFULSETS, controller_ref, key_of, now_rfc3339, parse_time, pod_ready, selector_matches,
    split_key)

PDBS = Resource("policy", "v1", "poddisruptionbudgets", True)
DELETION_TIMEOUT = 120.0  # upstream's DeletionTimeout: an evicted pod should be deleting by then


class BudgetError(Exception):
    """The budget's numbers cannot be computed; the message goes into its SyncFailed condition."""


def scaled(value, total: int) -> int:
    """An IntOrString against `total`: "25%" of 7 → 2 (rounded up, as upstream here)."""
    if isinstance(value, str):
        if not value.endswith("%"):
            raise BudgetError(f"invalid value {value!r}: a number or a percentage")
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)


class DisruptionController(Controller):
    name = "disruption"
    requires = (("policy", "poddisruptionbudgets"),)

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.pdbs = ctx.informers.get(PDBS)
        self.pods = ctx.informers.get(PODS)
        self.rs = ctx.informers.get(REPLICASETS)
        self.deployments = ctx.informers.get(DEPLOYMENTS)
        served = {(d.res.group, d.res.plural) for d in ctx.discovered}
        self.sts = ctx.informers.get(STATEFULSETS) if ("apps", "statefulsets") in served else None
        self.pdbs.add_handler(lambda t, pdb, old: t != "DELETED" and self.enqueue(pdb))
        self.pods.add_handler(self._pod_event)
        for owners in (self.rs, self.deployments, self.sts):
            if owners is not None:  # a scale change changes expectedPods of the budgets over its pods
                owners.add_handler(self._owner_event)

    def _budgets_for(self, pod: dict) -> list[dict]:
        md = pod.get("metadata") or {}
        return [b for b in self.pdbs.list(md.get("namespace") or "default")
                if selector_matches((b.get("spec") or {}).get("selector"), md.get("labels"))]

    def _pod_event(self, type_: str, pod: dict, old: dict | None) -> None:
        for b in self._budgets_for(pod) + (self._budgets_for(old) if old else []):
            self.enqueue(b)

    def _owner_event(self, type_: str, obj: dict, old: dict | None) -> None:
        if old is not None and (old.get("spec") or {}).get("replicas") == (obj.get("spec") or {}).get("replicas"):
            return
        for b in self.pdbs.list(obj["metadata"].get("namespace") or "default"):
            self.enqueue(b)

    # ---- the numbers ----

    def _scale_of(self, ns: str, ref: dict) -> tuple[str, int] | None:
        """(uid, replicas) of the controller that scales a pod with this controllerRef."""
        kind, name = ref.get("kind"), ref.get("name", "")
        if kind == "ReplicaSet":
            rs = self.rs.get(ns, name)
            if rs is None or rs["metadata"].get("uid") != ref.get("uid"):
                return None
            dref = controller_ref(rs)
            if dref is not None and dref.get("kind") == "Deployment":
                d = self.deployments.get(ns, dref.get("name", ""))
                if d is not None and d["metadata"].get("uid") == dref.get("uid"):
                    return d["metadata"]["uid"], (d.get("spec") or {}).get("replicas", 1)
            return rs["metadata"]["uid"], (rs.get("spec") or {}).get("replicas", 1)
        if kind == "StatefulSet" and self.sts is not None:
            s = self.sts.get(ns, name)
            if s is not None and s["metadata"].get("uid") == ref.get("uid"):
                return s["metadata"]["uid"], (s.get("spec") or {}).get("replicas", 1)
        return None

    def _expected_scale(self, ns: str, pods: list[dict]) -> int:
        scales: dict[str, int] = {}
        for p in pods:
            ref = controller_ref(p)
            found = self._scale_of(ns, ref) if ref is not None else None
            if found is not None:
                scales[found[0]] = found[1]
            elif ref is not None:
                raise BudgetError(f"found no controllers for pod {p['metadata']['name']!r}")
        return sum(scales.values())

    def numbers(self, pdb: dict, pods: list[dict]) -> tuple[int, int]:
        """(expectedPods, desiredHealthy)."""
        spec, ns = pdb.get("spec") or {}, pdb["metadata"].get("namespace") or "default"
        if spec.get("maxUnavailable") is not None:
            expected = self._expected_scale(ns, pods)
            return expected, max(0, expected - scaled(spec["maxUnavailable"], expected))
        min_available = spec.get("minAvailable")
        if isinstance(min_available, str):
            expected = self._expected_scale(ns, pods)
            return expected, scaled(min_available, expected)
        return len(pods), int(min_available or 0)

    # ---- the sync ----

    async def sync(self, key: str) -> None:
        pdb = self.pdbs.get_key(key)
        if pdb is None:
            return
        ns, _ = split_key(key)
        spec, st = pdb.get("spec") or {}, pdb.get("status") or {}
        pods = [p for p in self.pods.list(ns) if selector_matches(spec.get("selector"), p["metadata"].get("labels"))]
        by_name = {p["metadata"]["name"]: p for p in pods}
        now = time.time()
        disrupted, recheck = {}, None
        for name, at in (st.get("disruptedPods") or {}).items():
            p, t = by_name.get(name), parse_time(at) or 0.0
            if p is None or p["metadata"].get("deletionTimestamp"):
                continue
            if t + DELETION_TIMEOUT < now:
                self.log.info("pdb %s: pod %s was expected to be deleted by now but was not", key, name)
                continue
            disrupted[name] = at
            recheck = min(recheck or math.inf, t + DELETION_TIMEOUT - now)
        healthy = sum(1 for p in pods if not p["metadata"].get("deletionTimestamp")
                      and p["metadata"]["name"] not in disrupted and pod_ready(p))
        try:
            expected, desired = self.numbers(pdb, pods)
            allowed = max(0, healthy - desired) if expected > 0 else 0
            cond = ("True", "SufficientPods", "") if allowed > 0 else ("False", "InsufficientPods", "")
        except (BudgetError, ValueError) as e:
            expected, desired, allowed = 0, 0, 0
            cond = ("False", "SyncFailed", str(e))
        new = {"observedGeneration": pdb["metadata"].get("generation", 1), "disruptionsAllowed": allowed,
               "currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected}
        if disrupted:
            new["disruptedPods"] = disrupted
        old_cond = next((c for c in st.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None)
        if old_cond is not None and (old_cond.get("status"), old_cond.get("reason"), old_cond.get("message", "")) == cond:
            new["conditions"] = [old_cond]
        else:
            new["conditions"] = [{"type": "DisruptionAllowed", "status": cond[0], "reason": cond[1],
                                  "message": cond[2], "observedGeneration": new["observedGeneration"],
                                  "lastTransitionTime": now_rfc3339()}]
        if recheck is not None:
            self.queue.add_after(key, recheck + 0.1)
        if {k: st.get(k) for k in new} == new and set(st) <= set(new):
            return
        try:
            await self.api.update_status(PDBS, {**pdb, "status": new}, ns)
        except NotFound:
            return
        except Conflict:
            self.queue.add(key_of(pdb))  # the eviction API spent an allowance meanwhile: recount
