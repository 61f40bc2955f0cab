"""The Deployment controller: roll a Deployment's pods from one template to the next through
ReplicaSets, one ReplicaSet per template, as upstream's pkg/controller/deployment does.

The ReplicaSet whose template equals the Deployment's (ignoring the `pod-template-hash` label) is
the *new* one; every other owned ReplicaSet is *old*. A new template makes a new ReplicaSet named
`<deployment>-<hash>`, whose selector and pod labels carry `pod-template-hash`, so the pods of two
templates never match each other's ReplicaSet. Each ReplicaSet carries annotations:

    deployment.kubernetes.io/revision          its revision; the new one is max(old) + 1, so going
                                               back to an old template (`kubectl rollout undo`
                                               writes the old template into the Deployment) makes
                                               that old ReplicaSet the newest revision again
    deployment.kubernetes.io/revision-history  the revisions it had before
    deployment.kubernetes.io/desired-replicas  spec.replicas when last scaled
    deployment.kubernetes.io/max-replicas      spec.replicas + maxSurge when last scaled

One sync (syncDeployment):
  * claim ReplicaSets (adopt/release by selector and ownerReference, like the ReplicaSet
    controller claims pods);
  * paused: only scale (`kubectl scale` on a paused Deployment) and keep the Progressing condition
    at DeploymentPaused; a scaling event (desired-replicas differs from spec.replicas) likewise
    scales every ReplicaSet in proportion to its size;
  * Recreate: scale every old ReplicaSet to 0, wait until no old pod runs, then scale the new one up;
  * RollingUpdate: scale the new ReplicaSet up as far as maxSurge allows (total ≤ replicas +
    maxSurge), then scale old ones down as far as maxUnavailable allows (available ≥ replicas -
    maxUnavailable, counting only *available* pods of the new ReplicaSet) — first their unhealthy
    pods, then the oldest ReplicaSets first;
  * status: replicas, updated, ready, available, unavailable; Available (minimum availability) and
    Progressing (NewReplicaSetCreated → ReplicaSetUpdated → NewReplicaSetAvailable, or
    ProgressDeadlineExceeded once no progress was seen for progressDeadlineSeconds — which is
    what makes `kubectl rollout status` stop and fail);
  * once complete, old ReplicaSets at 0 replicas beyond revisionHistoryLimit are deleted.
"""

from __future__ import annotations

import copy
import json
import math
import time

from apiclient import DEPLOYMENTS, PODS, REPLICASETS, AlreadyExists, Conflict, NotFound

from controlplane.controllers.base import Context, Controller
from controlplane.controllers.meta import (
    controller_key, controller_ref, is_deleting, key_of, now_rfc3339, owner_ref, parse_time, selector_is_empty,
    selector_matches)

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
SKIP_COPY = {"kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY, DESIRED,
             MAX_REPLICAS, "deprecated.deployment.rollback.to"}
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery rand.SafeEncodeString


def template_hash(template: dict, collision_count: int = 0) -> str:
    """FNV-32a of the template (and the collision count), spelt in the vowel-free alphabet the
    upstream controller uses. (Upstream hashes Go's printout of the struct; we hash canonical JSON:
    same shape of name, different digits.)"""
    h = 0x811C9DC5
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += str(collision_count).encode()
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return "".join(SAFE_ALPHABET[int(c) % len(SAFE_ALPHABET)] for c in str(h))


def _without_hash(template: dict) -> dict:
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return t


def equal_ignore_hash(a: dict, b: dict) -> bool:
    return _without_hash(a) == _without_hash(b)


def resolve_int_or_percent(v, total: int, round_up: bool) -> int:
    if v is None:
        return 0
    if isinstance(v, int):
        return v
    s = str(v)
    if s.endswith("%"):
        x = int(s[:-1]) * total / 100
        return math.ceil(x) if round_up else math.floor(x)
    return int(s)


def fenceposts(d: dict) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) in pods; both 0 would never progress, so unavailable becomes 1."""
    spec = d.get("spec") or {}
    ru = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    replicas = spec.get("replicas", 1)
    surge = resolve_int_or_percent(ru.get("maxSurge", "25%"), replicas, True)
    unavail = resolve_int_or_percent(ru.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavail == 0:
        unavail = 1
    return surge, unavail


def is_rolling(d: dict) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def max_surge(d: dict) -> int:
    return fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: dict) -> int:
    replicas = (d.get("spec") or {}).get("replicas", 1)
    if not is_rolling(d) or replicas == 0:
        return 0
    return min(fenceposts(d)[1], replicas)


def revision(rs: dict) -> int:
    try:
        return int(((rs["metadata"].get("annotations") or {}).get(REVISION)) or 0)
    except ValueError:
        return 0


def replicas(rs: dict) -> int:
    return (rs.get("spec") or {}).get("replicas", 0) or 0


def status_of(rs: dict, field: str) -> int:
    return (rs.get("status") or {}).get(field, 0) or 0


def created(rs: dict) -> tuple:
    return (rs["metadata"].get("creationTimestamp") or "", rs["metadata"].get("name", ""))


def get_condition(status: dict, type_: str) -> dict | None:
    for c in status.get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None


def new_condition(type_: str, status: str, reason: str, message: str) -> dict:
    now = now_rfc3339()
    return {"type": type_, "status": status, "lastUpdateTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message}


def set_condition(status: dict, cond: dict) -> None:
    """SetDeploymentCondition: same status and reason → no change at all; same status → keep the
    transition time."""
    cur = get_condition(status, cond["type"])
    if cur is not None and cur.get("status") == cond["status"] and cur.get("reason") == cond["reason"]:
        return
    if cur is not None and cur.get("status") == cond["status"]:
        cond["lastTransitionTime"] = cur.get("lastTransitionTime")
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: dict, type_: str) -> None:
    if status.get("conditions"):
        status["conditions"] = [c for c in status["conditions"] if c.get("type") != type_]


class DeploymentController(Controller):
    name = "deployment"

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.deployments = ctx.informers.get(DEPLOYMENTS)
        self.rss = ctx.informers.get(REPLICASETS)
        self.pods = ctx.informers.get(PODS)
        self.deployments.add_handler(self.on_change)
        self.rss.add_handler(self._rs_event)
        self.pods.add_handler(self._pod_event)

    # ---- events ----

    def _rs_event(self, type_: str, rs: dict, old: dict | None) -> None:
        key = controller_key(rs, "Deployment", self.deployments)
        if old is not None:
            old_key = controller_key(old, "Deployment", self.deployments)
            if old_key and old_key != key:
                self.queue.add(old_key)
        if key:
            self.queue.add(key)
        elif type_ != "DELETED":
            for d in self.deployments.list(rs["metadata"].get("namespace", "")):
                if selector_matches((d.get("spec") or {}).get("selector"), rs["metadata"].get("labels")):
                    self.queue.add(key_of(d))

    def _pod_event(self, type_: str, pod: dict, old: dict | None) -> None:
        # Recreate waits for old pods to be gone: their deletion may be the event it waits for.
        if type_ != "DELETED":
            return
        rs_key = controller_key(pod, "ReplicaSet", self.rss)
        rs = self.rss.get_key(rs_key) if rs_key else None
        if rs is not None:
            key = controller_key(rs, "Deployment", self.deployments)
            if key:
                self.queue.add(key)

    # ---- claiming ReplicaSets ----

    async def claim_replicasets(self, d: dict) -> list[dict]:
        md = d["metadata"]
        selector = (d.get("spec") or {}).get("selector")
        mine = []
        can_adopt = False
        for rs in self.rss.list(md["namespace"]):
            ref = controller_ref(rs)
            matches = selector_matches(selector, rs["metadata"].get("labels"))
            if ref is not None:
                if ref.get("uid") != md["uid"]:
                    continue
                if matches or is_deleting(d):
                    mine.append(rs)
                else:
                    await self.set_owner_refs(REPLICASETS, rs, [r for r in rs["metadata"].get("ownerReferences") or []
                                                if r.get("uid") != md["uid"]])
                continue
            if not matches or is_deleting(d) or is_deleting(rs):
                continue
            if not can_adopt:  # one uncached read per sync (canAdopt)
                try:
                    fresh = await self.api.get(DEPLOYMENTS, md["name"], md["namespace"])
                except NotFound:
                    return mine
                if fresh["metadata"].get("uid") != md["uid"] or is_deleting(fresh):
                    return mine
                can_adopt = True
            adopted = await self.set_owner_refs(REPLICASETS, rs, (rs["metadata"].get("ownerReferences") or []) + [owner_ref(d)])
            if adopted is not None:
                mine.append(adopted)
        return mine


    # ---- writes ----

    async def scale_rs(self, d: dict, rs: dict, n: int) -> dict:
        """Set a ReplicaSet's replicas and its desired/max-replicas annotations; an Event if the
        size changed."""
        want_ann = {DESIRED: str(d["spec"].get("replicas", 1)),
                    MAX_REPLICAS: str(d["spec"].get("replicas", 1) + max_surge(d))}
        ann = rs["metadata"].get("annotations") or {}
        old_n = replicas(rs)
        if old_n == n and all(ann.get(k) == v for k, v in want_ann.items()):
            return rs
        new = copy.deepcopy(rs)
        new["spec"]["replicas"] = n
        new["metadata"].setdefault("annotations", {}).update(want_ann)
        out = await self.api.update(REPLICASETS, new, rs["metadata"]["namespace"])
        if old_n != n:
            self.events.emit(d, "Normal", "ScalingReplicaSet",
                             f"Scaled {'up' if n > old_n else 'down'} replica set {rs['metadata']['name']} "
                             f"from {old_n} to {n}")
        return out

    async def put_status(self, d: dict, status: dict) -> dict:
        """At d's resourceVersion: a 409 means we computed from a stale copy; the sync is retried
        (writing over a newer status could undo a condition someone else's sync set)."""
        return await self.api.update_status(DEPLOYMENTS, {**d, "status": status}, d["metadata"]["namespace"])

    async def set_revision(self, d: dict, rev: str) -> dict:
        """The Deployment carries the revision of its newest ReplicaSet (what `kubectl rollout
        history` and `describe` show). Upstream writes it through the status subresource, whose
        strategy keeps annotations; ours keeps only status, so it is a metadata patch here."""
        ann = d["metadata"].get("annotations") or {}
        if ann.get(REVISION) == rev:
            return d
        md = d["metadata"]
        return await self.api.patch(DEPLOYMENTS, md["name"], {"metadata": {"annotations": {REVISION: rev}}},
                                    md["namespace"])

    # ---- the new ReplicaSet ----

    def split_new_old(self, d: dict, rs_list: list[dict]) -> tuple[dict | None, list[dict]]:
        template = (d.get("spec") or {}).get("template") or {}
        new = None
        for rs in sorted(rs_list, key=created):
            if equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, template):
                new = rs
                break
        return new, [rs for rs in rs_list if rs is not new]

    def _rs_annotations(self, d: dict, rs_ann: dict, new_rev: int, exists: bool) -> dict:
        """SetNewReplicaSetAnnotations: the Deployment's own annotations copied, revision set
        (remembering the old one in revision-history), desired/max-replicas."""
        out = dict(rs_ann)
        for k, v in (d["metadata"].get("annotations") or {}).items():
            if k not in SKIP_COPY:
                out[k] = v
        old_rev = out.get(REVISION)
        try:
            old_n = int(old_rev) if old_rev else 0
        except ValueError:
            old_n = 0
        if old_n < new_rev:
            out[REVISION] = str(new_rev)
            if exists and old_rev:
                hist = [h for h in (out.get(REVISION_HISTORY) or "").split(",") if h]
                out[REVISION_HISTORY] = ",".join(hist + [old_rev])
        if not exists:
            out[DESIRED] = str(d["spec"].get("replicas", 1))
            out[MAX_REPLICAS] = str(d["spec"].get("replicas", 1) + max_surge(d))
        return out

    async def get_new_rs(self, d: dict, rs_list: list[dict], create: bool) -> tuple[dict, dict | None, list[dict]]:
        """(deployment, new ReplicaSet or None, old ReplicaSets), bringing revisions up to date and
        creating the new ReplicaSet if asked."""
        new, old = self.split_new_old(d, rs_list)
        new_rev = max([revision(r) for r in old] or [0]) + 1
        spec = d["spec"]
        status = copy.deepcopy(d.get("status") or {})
        if new is not None:
            ann = self._rs_annotations(d, new["metadata"].get("annotations") or {}, new_rev, True)
            min_ready = spec.get("minReadySeconds", 0)
            if ann != (new["metadata"].get("annotations") or {}) or \
                    (new["spec"].get("minReadySeconds", 0) != min_ready):
                upd = copy.deepcopy(new)
                upd["metadata"]["annotations"] = ann
                upd["spec"]["minReadySeconds"] = min_ready
                new = await self.api.update(REPLICASETS, upd, d["metadata"]["namespace"])
            d = await self.set_revision(d, new["metadata"]["annotations"][REVISION])
            if spec.get("progressDeadlineSeconds") is not None and get_condition(status, "Progressing") is None:
                set_condition(status, new_condition("Progressing", "True", "FoundNewReplicaSet",
                                                    f'Found new replica set "{new["metadata"]["name"]}"'))
                d = await self.put_status(d, status)
            return d, new, old
        if not create:
            return d, None, old
        collision = status.get("collisionCount", 0) or 0
        h = template_hash(spec["template"], collision)
        template = copy.deepcopy(spec["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        selector = copy.deepcopy(spec["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = h
        name = f"{d['metadata']['name']}-{h}"
        ns = d["metadata"]["namespace"]
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": name, "namespace": ns, "labels": dict(template["metadata"]["labels"]),
                           "ownerReferences": [owner_ref(d)],
                           "annotations": self._rs_annotations(d, {}, new_rev, False)},
              "spec": {"replicas": 0, "minReadySeconds": spec.get("minReadySeconds", 0),
                       "selector": selector, "template": template}}
        rs["spec"]["replicas"] = self.new_rs_replicas(d, rs_list, rs)
        try:
            new = await self.api.create(REPLICASETS, rs, ns)
        except AlreadyExists:
            existing = await self.api.get(REPLICASETS, name, ns)
            ref = controller_ref(existing)
            if ref and ref.get("uid") == d["metadata"]["uid"] and \
                    equal_ignore_hash(existing["spec"]["template"], spec["template"]):
                return d, existing, old  # ours, seen before the informer had it
            status["collisionCount"] = collision + 1  # a hash collision: the next name differs
            await self.put_status(d, status)
            raise
        if replicas(new) > 0:
            self.events.emit(d, "Normal", "ScalingReplicaSet",
                             f"Scaled up replica set {name} from 0 to {replicas(new)}")
        d = await self.set_revision(d, str(new_rev))
        if spec.get("progressDeadlineSeconds") is not None:
            set_condition(status, new_condition("Progressing", "True", "NewReplicaSetCreated",
                                                f'Created new replica set "{name}"'))
            d = await self.put_status(d, status)
        return d, new, old

    def new_rs_replicas(self, d: dict, all_rs: list[dict], new: dict) -> int:
        """NewRSNewReplicas: how big the new ReplicaSet may be now."""
        want = d["spec"].get("replicas", 1)
        if not is_rolling(d):
            return want
        current = sum(replicas(r) for r in all_rs if r["metadata"].get("name") != new["metadata"]["name"]) \
            + replicas(new)
        max_total = want + max_surge(d)
        if current >= max_total:
            return replicas(new)
        return replicas(new) + min(max_total - current, want - replicas(new))

    # ---- strategies ----

    async def rollout_rolling(self, d: dict, rs_list: list[dict]) -> None:
        d, new, old = await self.get_new_rs(d, rs_list, True)
        all_rs = old + [new]
        # scale the new ReplicaSet up
        want = d["spec"].get("replicas", 1)
        if replicas(new) != want:
            n = want if replicas(new) > want else self.new_rs_replicas(d, all_rs, new)
            if n != replicas(new):
                await self.scale_rs(d, new, n)
                await self.sync_rollout_status(d, [r if r is not new else {**new, "spec": {
                    **new["spec"], "replicas": n}} for r in all_rs], new)
                return
        # scale old ReplicaSets down
        if await self.reconcile_old(d, all_rs, [r for r in old if replicas(r) > 0], new):
            await self.sync_rollout_status(d, all_rs, new)
            return
        if self.complete(d, d.get("status") or {}):
            await self.cleanup(d, old)
        await self.sync_rollout_status(d, all_rs, new)

    async def reconcile_old(self, d: dict, all_rs: list[dict], old: list[dict], new: dict) -> bool:
        if sum(replicas(r) for r in old) == 0:
            return False
        all_pods = sum(replicas(r) for r in all_rs)
        min_available = d["spec"].get("replicas", 1) - max_unavailable(d)
        new_unavailable = replicas(new) - status_of(new, "availableReplicas")
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        # first the old ReplicaSets' unhealthy pods: removing them costs no availability
        cleaned = 0
        sizes = {r["metadata"]["name"]: replicas(r) for r in all_rs}
        for r in sorted(old, key=created):
            if cleaned >= max_scaled_down:
                break
            unhealthy = replicas(r) - status_of(r, "availableReplicas")
            if replicas(r) == 0 or unhealthy <= 0:
                continue
            n = min(max_scaled_down - cleaned, unhealthy)
            await self.scale_rs(d, r, replicas(r) - n)
            sizes[r["metadata"]["name"]] = replicas(r) - n
            cleaned += n
        # then available ones, oldest ReplicaSet first, as far as minAvailable allows
        available = sum(status_of(r, "availableReplicas") for r in all_rs)
        scaled = 0
        if available > min_available:
            total = available - min_available
            for r in sorted(old, key=created):
                size = sizes[r["metadata"]["name"]]
                if scaled >= total:
                    break
                if size == 0:
                    continue
                n = min(size, total - scaled)
                cur = self.rss.get(r["metadata"]["namespace"], r["metadata"]["name"]) or r
                if size != replicas(cur):
                    cur = {**cur, "spec": {**cur["spec"], "replicas": size}}
                try:
                    await self.scale_rs(d, cur, size - n)
                except Conflict:
                    fresh = await self.api.get(REPLICASETS, r["metadata"]["name"], r["metadata"]["namespace"])
                    await self.scale_rs(d, fresh, size - n)
                scaled += n
        return cleaned + scaled > 0

    async def rollout_recreate(self, d: dict, rs_list: list[dict]) -> None:
        d, new, old = await self.get_new_rs(d, rs_list, False)
        all_rs = old + ([new] if new else [])
        scaled = False
        for r in old:
            if replicas(r) > 0:
                await self.scale_rs(d, r, 0)
                scaled = True
        if scaled:
            await self.sync_rollout_status(d, all_rs, new)
            return
        if self.old_pods_running(new, old):
            await self.sync_rollout_status(d, all_rs, new)
            return
        if new is None:
            d, new, old = await self.get_new_rs(d, rs_list, True)
            all_rs = old + [new]
        if replicas(new) != d["spec"].get("replicas", 1):
            await self.scale_rs(d, new, d["spec"].get("replicas", 1))
        if self.complete(d, d.get("status") or {}):
            await self.cleanup(d, old)
        await self.sync_rollout_status(d, all_rs, new)

    def old_pods_running(self, new: dict | None, old: list[dict]) -> bool:
        if sum(status_of(r, "replicas") for r in old) > 0:
            return True
        for r in old:
            for p in self.pods.owned_by(r["metadata"]["uid"]):
                if (p.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                    return True
        return False

    async def scale(self, d: dict, new: dict | None, old: list[dict]) -> None:
        """A scaling event (or a paused Deployment): resize without rolling."""
        want = d["spec"].get("replicas", 1)
        everything = ([new] if new else []) + sorted(old, key=created, reverse=True)
        active = [r for r in everything if replicas(r) > 0]
        if len(active) <= 1:
            target = active[0] if active else (everything[0] if everything else None)
            if target is not None and replicas(target) != want:
                await self.scale_rs(d, target, want)
            return
        if new is not None and replicas(new) == want and status_of(new, "availableReplicas") == want and \
                (new["metadata"].get("annotations") or {}).get(DESIRED) == str(want):
            for r in old:
                if replicas(r) > 0:
                    await self.scale_rs(d, r, 0)
            return
        if not is_rolling(d):
            return
        total = sum(replicas(r) for r in active)
        allowed = want + max_surge(d) if want > 0 else 0
        to_add = allowed - total
        # ReplicaSetsBySizeNewer (adding) / BySizeOlder (removing): biggest first, ties by age
        active.sort(key=created, reverse=to_add > 0)
        active.sort(key=lambda r: -replicas(r))  # stable: keeps the age order among equals
        added = 0
        sizes = {}
        for r in active:
            if to_add == 0:
                sizes[r["metadata"]["name"]] = replicas(r)
                continue
            prop = self.proportion(d, r, to_add, added)
            sizes[r["metadata"]["name"]] = replicas(r) + prop
            added += prop
        for i, r in enumerate(active):
            n = sizes[r["metadata"]["name"]]
            if i == 0 and to_add != 0:
                n = max(0, n + to_add - added)  # leftovers to the largest
            await self.scale_rs(d, r, n)

    def proportion(self, d: dict, rs: dict, to_add: int, added: int) -> int:
        if replicas(rs) == 0 or to_add == 0 or to_add == added:
            return 0
        want = d["spec"].get("replicas", 1)
        if want == 0:
            fraction = -replicas(rs)
        else:
            max_now = want + max_surge(d)
            try:
                before = int((rs["metadata"].get("annotations") or {}).get(MAX_REPLICAS) or 0)
            except ValueError:
                before = 0
            if before == 0:
                before = (d.get("status") or {}).get("replicas") or want
            fraction = round(replicas(rs) * max_now / before) - replicas(rs)
        allowed = to_add - added
        return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)

    def is_scaling_event(self, d: dict, rs_list: list[dict]) -> bool:
        want = str(d["spec"].get("replicas", 1))
        for r in rs_list:
            if replicas(r) > 0:
                desired = (r["metadata"].get("annotations") or {}).get(DESIRED)
                if desired is not None and desired != want:
                    return True
        return False

    async def cleanup(self, d: dict, old: list[dict]) -> None:
        limit = d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        alive = [r for r in old if not is_deleting(r)]
        diff = len(alive) - limit
        if diff <= 0:
            return
        for r in sorted(alive, key=lambda r: (revision(r), created(r)))[:diff]:
            if status_of(r, "replicas") != 0 or replicas(r) != 0 or \
                    r["metadata"].get("generation", 1) > status_of(r, "observedGeneration"):
                continue
            try:
                await self.api.delete(REPLICASETS, r["metadata"]["name"], r["metadata"]["namespace"],
                                      uid=r["metadata"]["uid"])
            except NotFound:
                pass

    # ---- status ----

    def calculate_status(self, d: dict, all_rs: list[dict], new: dict | None) -> dict:
        available = sum(status_of(r, "availableReplicas") for r in all_rs)
        total_spec = sum(replicas(r) for r in all_rs)
        st = copy.deepcopy(d.get("status") or {})
        out = {"observedGeneration": d["metadata"].get("generation", 1),
               "replicas": sum(status_of(r, "replicas") for r in all_rs),
               "updatedReplicas": status_of(new, "replicas") if new else 0,
               "readyReplicas": sum(status_of(r, "readyReplicas") for r in all_rs),
               "availableReplicas": available,
               "unavailableReplicas": max(0, total_spec - available)}
        if st.get("collisionCount"):
            out["collisionCount"] = st["collisionCount"]
        if st.get("conditions"):
            out["conditions"] = st["conditions"]
        want = d["spec"].get("replicas", 1)
        if available >= want - max_unavailable(d):
            set_condition(out, new_condition("Available", "True", "MinimumReplicasAvailable",
                                             "Deployment has minimum availability."))
        else:
            set_condition(out, new_condition("Available", "False", "MinimumReplicasUnavailable",
                                             "Deployment does not have minimum availability."))
        return out

    @staticmethod
    def complete(d: dict, st: dict) -> bool:
        want = d["spec"].get("replicas", 1)
        return (st.get("updatedReplicas", 0) == want and st.get("replicas", 0) == want and
                st.get("availableReplicas", 0) == want and
                st.get("observedGeneration", 0) >= d["metadata"].get("generation", 1))

    @staticmethod
    def progressing(d: dict, new: dict) -> bool:
        old = d.get("status") or {}
        return (new.get("updatedReplicas", 0) > old.get("updatedReplicas", 0) or
                new.get("replicas", 0) - new.get("updatedReplicas", 0) <
                old.get("replicas", 0) - old.get("updatedReplicas", 0) or
                new.get("readyReplicas", 0) > old.get("readyReplicas", 0) or
                new.get("availableReplicas", 0) > old.get("availableReplicas", 0))

    @staticmethod
    def timed_out(d: dict) -> bool:
        deadline = d["spec"].get("progressDeadlineSeconds")
        cond = get_condition(d.get("status") or {}, "Progressing")
        if deadline is None or cond is None or cond.get("reason") == "NewReplicaSetAvailable":
            return False
        if cond.get("reason") == "ProgressDeadlineExceeded":
            return True
        t = parse_time(cond.get("lastUpdateTime"))
        return t is not None and t + deadline < time.time()

    async def sync_rollout_status(self, d: dict, all_rs: list[dict], new: dict | None) -> None:
        st = self.calculate_status(d, all_rs, new)
        deadline = d["spec"].get("progressDeadlineSeconds")
        if deadline is None:
            remove_condition(st, "Progressing")
        cur = get_condition(d.get("status") or {}, "Progressing")
        done = st["replicas"] == st["updatedReplicas"] and cur is not None and \
            cur.get("reason") == "NewReplicaSetAvailable"
        name = new["metadata"]["name"] if new else ""
        if deadline is not None and not done:
            if self.complete(d, st):
                set_condition(st, new_condition("Progressing", "True", "NewReplicaSetAvailable",
                                                f'ReplicaSet "{name}" has successfully progressed.'))
            elif self.progressing(d, st):
                cond = new_condition("Progressing", "True", "ReplicaSetUpdated",
                                     f'ReplicaSet "{name}" is progressing.')
                if cur is not None and cur.get("status") == "True":
                    cond["lastTransitionTime"] = cur.get("lastTransitionTime")
                remove_condition(st, "Progressing")
                set_condition(st, cond)
            elif self.timed_out(d):
                set_condition(st, new_condition("Progressing", "False", "ProgressDeadlineExceeded",
                                                f'ReplicaSet "{name}" has timed out progressing.'))
        failures = [c for r in ([new] if new else []) + all_rs if r
                    for c in (r.get("status") or {}).get("conditions") or [] if c.get("type") == "ReplicaFailure"]
        if failures:
            c = failures[0]
            set_condition(st, new_condition("ReplicaFailure", c.get("status", "True"), c.get("reason", ""),
                                            c.get("message", "")))
        else:
            remove_condition(st, "ReplicaFailure")
        if st != (d.get("status") or {}):
            d = await self.put_status(d, st)
        self.requeue_stuck(d, st)

    def requeue_stuck(self, d: dict, st: dict) -> None:
        """Come back when the progress deadline would pass, to write ProgressDeadlineExceeded."""
        deadline = d["spec"].get("progressDeadlineSeconds")
        cond = get_condition(st, "Progressing")
        if deadline is None or cond is None or self.complete(d, st) or \
                cond.get("reason") in ("NewReplicaSetAvailable", "ProgressDeadlineExceeded"):
            return
        t = parse_time(cond.get("lastUpdateTime")) or time.time()
        self.queue.add_after(key_of(d), max(1.0, t + deadline - time.time() + 1))

    async def sync_status_only(self, d: dict, rs_list: list[dict]) -> None:
        d, new, old = await self.get_new_rs(d, rs_list, False)
        st = self.calculate_status(d, old + ([new] if new else []), new)
        if st != (d.get("status") or {}):
            await self.put_status(d, st)

    async def check_paused(self, d: dict) -> dict:
        if d["spec"].get("progressDeadlineSeconds") is None:
            return d
        st = copy.deepcopy(d.get("status") or {})
        cond = get_condition(st, "Progressing")
        if cond is not None and cond.get("reason") == "ProgressDeadlineExceeded":
            return d
        paused_cond = cond is not None and cond.get("reason") == "DeploymentPaused"
        if d["spec"].get("paused") and not paused_cond:
            set_condition(st, new_condition("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused"))
        elif not d["spec"].get("paused") and paused_cond:
            set_condition(st, new_condition("Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed"))
        else:
            return d
        return await self.put_status(d, st)

    # ---- sync ----

    async def sync(self, key: str) -> None:
        d = self.deployments.get_key(key)
        if d is None:
            return
        d = copy.deepcopy(d)
        if selector_is_empty(d["spec"].get("selector")):
            self.events.emit(d, "Warning", "SelectingAll",
                             "This deployment is selecting all pods. A non-empty selector is required.")
            return
        rs_list = await self.claim_replicasets(d)
        if is_deleting(d):
            await self.sync_status_only(d, rs_list)
            return
        d = await self.check_paused(d)
        if d["spec"].get("paused") or self.is_scaling_event(d, rs_list):
            d, new, old = await self.get_new_rs(d, rs_list, False)
            await self.scale(d, new, old)
            if d["spec"].get("paused"):
                await self.cleanup(d, old)
            st = self.calculate_status(d, old + ([new] if new else []), new)
            if st != (d.get("status") or {}):
                await self.put_status(d, st)
            return
        if is_rolling(d):
            await self.rollout_rolling(d, rs_list)
        else:
            await self.rollout_recreate(d, rs_list)
