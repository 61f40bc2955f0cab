"""The ReplicaSet controller: keep `spec.replicas` pods matching the selector alive.

One sync of a ReplicaSet (upstream pkg/controller/replicaset):

  1. Claim pods. Among the namespace's active pods: ours (controller ownerReference with our
     uid) stay ours while the selector matches them and are *released* (the reference removed)
     when it stops matching; a pod with no controller that matches is *adopted* (a reference added),
     unless the ReplicaSet is being deleted. Both writes carry the pod's resourceVersion, so a
     pod someone else adopted meanwhile is left alone (409).
  2. If the expectations of the previous sync are met (expectations.py), create or delete the
     difference: creations in slow-start batches (1, 2, 4, ...; a batch that fails stops the rest,
     so a quota or admission error costs one request, not 500); deletions choose the pods upstream
     would (`deletion_order`): unscheduled before scheduled, Pending < Unknown < Running, not ready
     before ready, lower pod-deletion-cost first, pods doubled up on a node first, the more recently
     ready first, more restarts first, newer first.
  3. Write status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas,
     observedGeneration, and a ReplicaFailure condition when creating pods failed.
"""

from __future__ import annotations

import asyncio
import math
import time

from apiclient import PODS, REPLICASETS, ApiError, Conflict, NotFound

from controlplane.controllers.base import Context, Controller
from controlplane.controllers.expectations import Expectations
from controlplane.controllers.meta import (
    controller_key, controller_ref, is_deleting, key_of, now_rfc3339, owner_ref, parse_time, pod_active, pod_available,
    pod_condition, pod_from_template, pod_ready, selector_matches, split_key)

BURST_REPLICAS = 500  # most pods created or deleted in one sync (upstream's burstReplicas)
PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}


async def slow_start_batch(count: int, make) -> tuple[int, Exception | None]:
    """Call `make()` count times in batches of 1, 2, 4, ...; stop after a batch with an error.
    Returns (successes, first error)."""
    done, batch = 0, 1
    while done < count:
        n = min(batch, count - done)
        results = await asyncio.gather(*(make() for _ in range(n)), return_exceptions=True)
        errs = [r for r in results if isinstance(r, BaseException)]
        done += n - len(errs)
        if errs:
            return done, errs[0]  # type: ignore[return-value]
        batch *= 2
    return done, None


def _log_bucket(t: float | None, now: float) -> int:
    """LogarithmicScaleDown: times compared by the power of two of their age in seconds, so pods
    that came up at nearly the same moment count as equally old."""
    if t is None:
        return -1
    age = now - t
    return int(math.floor(math.log2(age))) if age >= 1 else 0


def _restarts(pod: dict) -> int:
    return max([c.get("restartCount", 0) for c in (pod.get("status") or {}).get("containerStatuses") or []]
               or [0])


def deletion_order(pods: list[dict], ranks: dict[str, int], now: float | None = None) -> list[dict]:
    """Pods sorted the way upstream's ActivePodsWithRanks sorts them: the first are deleted first."""
    now = time.time() if now is None else now

    def sort_key(p: dict):
        md, spec, st = p["metadata"], p.get("spec") or {}, p.get("status") or {}
        ready = pod_ready(p)
        try:
            cost = int((md.get("annotations") or {}).get("controller.kubernetes.io/pod-deletion-cost", "0"))
        except ValueError:
            cost = 0
        ready_since = parse_time((pod_condition(p, "Ready") or {}).get("lastTransitionTime")) if ready else None
        created = parse_time(md.get("creationTimestamp"))
        return (1 if spec.get("nodeName") else 0,
                PHASE_ORDER.get(st.get("phase"), 3),
                1 if ready else 0,
                cost,
                -ranks.get(md.get("uid", ""), 0),
                _log_bucket(ready_since, now) if ready else 0,
                -_restarts(p),
                _log_bucket(created, now),
                md.get("uid", ""))
    return sorted(pods, key=sort_key)


class ReplicaSetController(Controller):
    name = "replicaset"
    res = REPLICASETS
    kind = "ReplicaSet"

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.expectations = Expectations()
        self.owners = ctx.informers.get(self.res)
        self.pods = ctx.informers.get(PODS)
        self.owners.add_handler(self._owner_event)
        self.pods.add_handler(self._pod_event)

    # ---- events ----

    def _owner_event(self, type_: str, obj: dict, old: dict | None) -> None:
        if type_ == "DELETED":
            self.expectations.delete(key_of(obj))
        self.enqueue(obj)

    def _owner_key(self, pod: dict) -> str | None:
        return controller_key(pod, self.kind, self.owners)

    def _matching_owners(self, pod: dict) -> list[str]:
        ns = pod["metadata"].get("namespace", "")
        return [key_of(o) for o in self.owners.list(ns)
                if selector_matches((o.get("spec") or {}).get("selector"), pod["metadata"].get("labels"))]

    def _pod_event(self, type_: str, pod: dict, old: dict | None) -> None:
        key = self._owner_key(pod)
        pkey = key_of(pod)
        if type_ == "ADDED":
            if key:
                if is_deleting(pod):
                    self.expectations.deletion_observed(key, pkey)
                else:
                    self.expectations.creation_observed(key)
                self.queue.add(key)
            else:
                for k in self._matching_owners(pod):  # an orphan: whoever matches may adopt it
                    self.queue.add(k)
            return
        if type_ == "DELETED":
            if key:
                self.expectations.deletion_observed(key, pkey)
                self.queue.add(key)
            return
        # MODIFIED
        if is_deleting(pod) and key:
            self.expectations.deletion_observed(key, pkey)
        old_key = self._owner_key(old) if old else None
        if old_key and old_key != key:
            self.queue.add(old_key)
        if key:
            self.queue.add(key)
            owner = self.owners.get_key(key)
            min_ready = ((owner or {}).get("spec") or {}).get("minReadySeconds") or 0
            if min_ready and old is not None and not pod_ready(old) and pod_ready(pod):
                self.queue.add_after(key, min_ready + 1)  # re-check when it becomes available
        elif old is None or old["metadata"].get("labels") != pod["metadata"].get("labels") or \
                controller_ref(old) is not None:
            for k in self._matching_owners(pod):
                self.queue.add(k)

    # ---- sync ----

    async def claim_pods(self, owner: dict, pods: list[dict]) -> list[dict]:
        """Adopt matching orphans, release ours that no longer match; the pods we own after."""
        md = owner["metadata"]
        selector = (owner.get("spec") or {}).get("selector")
        mine: list[dict] = []
        can_adopt = False
        for p in pods:
            ref = controller_ref(p)
            matches = selector_matches(selector, p["metadata"].get("labels"))
            if ref is not None:
                if ref.get("uid") != md["uid"]:
                    continue  # someone else's
                if matches or is_deleting(owner):
                    mine.append(p)
                    continue
                await self.set_owner_refs(PODS, p, [r for r in p["metadata"].get("ownerReferences") or []
                                           if r.get("uid") != md["uid"]])
                continue
            if not matches or is_deleting(owner) or is_deleting(p):
                continue
            if not can_adopt:  # canAdopt: one uncached read per sync, before the first adoption
                try:
                    fresh = await self.api.get(self.res, md["name"], md["namespace"])
                except NotFound:
                    return mine
                if fresh["metadata"].get("uid") != md["uid"] or is_deleting(fresh):
                    return mine
                can_adopt = True
            adopted = await self.set_owner_refs(PODS, p, (p["metadata"].get("ownerReferences") or [])
                                             + [owner_ref(owner)])
            if adopted is not None:
                mine.append(adopted)
        return mine


    def _ranks(self, owner: dict, pods: list[dict]) -> dict[str, int]:
        """For each pod, how many active pods of the same family (this ReplicaSet, or every
        ReplicaSet of the same Deployment) share its node — "doubled up" pods go first."""
        ns = owner["metadata"]["namespace"]
        family = {owner["metadata"]["uid"]}
        parent = controller_ref(owner)
        if parent is not None:
            for o in self.owners.list(ns):
                r = controller_ref(o)
                if r and r.get("uid") == parent.get("uid"):
                    family.add(o["metadata"]["uid"])
        per_node: dict[str, int] = {}
        for uid in family:
            for p in self.pods.owned_by(uid):
                node = (p.get("spec") or {}).get("nodeName")
                if node and pod_active(p):
                    per_node[node] = per_node.get(node, 0) + 1
        return {p["metadata"]["uid"]: per_node.get((p.get("spec") or {}).get("nodeName") or "", 0)
                for p in pods}

    async def manage(self, owner: dict, pods: list[dict]) -> Exception | None:
        key = key_of(owner)
        want = (owner.get("spec") or {}).get("replicas", 1)
        diff = len(pods) - want
        if diff < 0:
            n = min(-diff, BURST_REPLICAS)
            self.expectations.expect_creations(key, n)
            template = (owner.get("spec") or {}).get("template") or {}
            prefix = owner["metadata"]["name"] + "-"

            async def create():
                try:
                    pod = await self.api.create(PODS, pod_from_template(template, owner, prefix),
                                                owner["metadata"]["namespace"])
                except Exception:
                    self.expectations.creation_observed(key)
                    raise
                self.events.emit(owner, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")

            ok, err = await slow_start_batch(n, create)
            for _ in range(n - ok - (1 if err else 0)):
                self.expectations.creation_observed(key)  # batches never started
            if err is not None:
                self.events.emit(owner, "Warning", "FailedCreate", f"Error creating: {err}")
            return err
        if diff > 0:
            victims = deletion_order(pods, self._ranks(owner, pods))[:min(diff, BURST_REPLICAS)]
            self.expectations.expect_deletions(key, [key_of(p) for p in victims])

            async def delete(p):
                try:
                    await self.api.delete(PODS, p["metadata"]["name"], p["metadata"]["namespace"],
                                          uid=p["metadata"]["uid"])
                    self.events.emit(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}")
                except NotFound:
                    self.expectations.deletion_observed(key, key_of(p))
                except ApiError as e:
                    self.expectations.deletion_observed(key, key_of(p))
                    return e
                return None
            errs = [e for e in await asyncio.gather(*(delete(p) for p in victims)) if e]
            return errs[0] if errs else None
        return None

    def status_of(self, owner: dict, pods: list[dict], err: Exception | None) -> dict:
        spec, st = owner.get("spec") or {}, dict(owner.get("status") or {})
        tmpl_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        min_ready = spec.get("minReadySeconds") or 0
        now = time.time()
        new = {"replicas": len(pods),
               "fullyLabeledReplicas": sum(1 for p in pods if all(
                   (p["metadata"].get("labels") or {}).get(k) == v for k, v in tmpl_labels.items())),
               "readyReplicas": sum(1 for p in pods if pod_ready(p)),
               "availableReplicas": sum(1 for p in pods if pod_available(p, min_ready, now)),
               "observedGeneration": owner["metadata"].get("generation", 1)}
        # upstream calculateStatus: a failure adds the condition once and a success removes it;
        # a failure while it is there keeps it as it is — a fresh lastTransitionTime on every
        # retry would be a status write, whose watch event would queue the object again at once
        # and defeat the per-key backoff of a ReplicaSet that keeps failing
        failed_before = [c for c in st.get("conditions") or [] if c.get("type") == "ReplicaFailure"]
        conds = [c for c in st.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
        if err is not None and failed_before:
            conds.extend(failed_before)
        elif err is not None:
            verb = "create" if len(pods) < spec.get("replicas", 1) else "delete"
            conds.append({"type": "ReplicaFailure", "status": "True", "lastTransitionTime": now_rfc3339(),
                          "reason": "FailedCreate" if verb == "create" else "FailedDelete",
                          "message": str(getattr(err, "message", err))})
        for k in ("readyReplicas", "availableReplicas", "fullyLabeledReplicas"):
            if not new[k]:
                new.pop(k)  # omitempty, as the Go types serialise
        if conds:
            new["conditions"] = conds
        return new

    async def write_status(self, owner: dict, status: dict) -> None:
        if {k: v for k, v in (owner.get("status") or {}).items()} == status:
            return
        md = owner["metadata"]
        for _ in range(4):
            try:
                await self.api.update_status(self.res, {**owner, "status": status}, md["namespace"])
                return
            except Conflict:
                owner = await self.api.get(self.res, md["name"], md["namespace"])
        raise Conflict(409, "Conflict", f"{self.res.plural}/{md['name']}: status kept conflicting")

    async def sync(self, key: str) -> None:
        owner = self.owners.get_key(key)
        if owner is None:
            self.expectations.delete(key)
            return
        ns, _ = split_key(key)
        needs_sync = self.expectations.satisfied(key)
        pods = [p for p in self.pods.list(ns) if pod_active(p)]
        pods = await self.claim_pods(owner, pods)
        err = None
        if needs_sync and not is_deleting(owner):
            err = await self.manage(owner, pods)
        await self.write_status(owner, self.status_of(owner, pods, err))
        min_ready = (owner.get("spec") or {}).get("minReadySeconds") or 0
        st = self.status_of(owner, pods, None)
        if min_ready and st.get("readyReplicas", 0) != st.get("availableReplicas", 0):
            self.queue.add_after(key, min_ready)
        if err is not None:
            raise err
