"""The DaemonSet controller: one pod on every eligible node, replaced node by node on update.

Eligible (upstream's nodeShouldRunDaemonPod): the node matches the template's nodeSelector and
required node affinity, and the pod tolerates the node's NoSchedule/NoExecute taints. Daemon pods
get tolerations of their own first — not-ready and unreachable (NoExecute, for ever: a daemon
stays on its node), the pressure taints and unschedulable (NoSchedule), network-unavailable for
hostNetwork pods — so cordoning a node or a full disk does not remove its daemons. A node whose
NoExecute taint the pod does not tolerate loses its pod.

Pods are created for a node through the scheduler, as upstream does since 1.12: the pod's required
node affinity is replaced by `matchFields metadata.name In [<node>]`, so the default scheduler
binds it there (and counts its resources). One sync, per node: no pod → create one; more than one
→ keep the oldest; failed → delete (it is re-created next time); not eligible → delete.

Versions: each template has a hash, put on its pods as `controller-revision-hash` (and, when the
API server serves apps/v1 ControllerRevisions, recorded as one, so `kubectl rollout history ds`
lists them). RollingUpdate (maxUnavailable, default 1) deletes old pods while the number of nodes
without an available new pod stays within maxUnavailable — old pods that are not available go
first, for free; the per-node rule above then creates the new pod. With maxSurge > 0 the new pod
starts beside the old one instead (on up to maxSurge nodes at a time) and the old one goes once
the new one is available, so no node is left without its daemon. OnDelete waits for the user to
delete pods.
"""

from __future__ import annotations

import copy
import time

from apiclient import DAEMONSETS, NODES, PODS, AlreadyExists, ApiError, Conflict, NotFound

from controlplane.controllers.base import Context, Controller
from controlplane.controllers.deployment import resolve_int_or_percent, template_hash
from controlplane.controllers.expectations import Expectations
from controlplane.controllers.meta import (
    CONTROLLERREVISIONS, controller_key, controller_ref, is_deleting, key_of, owner_ref, pod_available,
    pod_from_template, pod_ready, selector_matches)
from controlplane.controllers.nodelifecycle import tolerates
from controlplane.controllers.replicaset import slow_start_batch

HASH_LABEL = "controller-revision-hash"
TEMPLATE_GENERATION = "pod-template-generation"
DAEMON_TOLERATIONS = (
    ("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"), ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"), ("node.kubernetes.io/unschedulable", "NoSchedule"))


def daemon_tolerations(spec: dict) -> list[dict]:
    tols = list(spec.get("tolerations") or [])
    extra = list(DAEMON_TOLERATIONS)
    if spec.get("hostNetwork"):
        extra.append(("node.kubernetes.io/network-unavailable", "NoSchedule"))
    for key, effect in extra:
        if not any(t.get("key") == key and t.get("effect") == effect for t in tols):
            tols.append({"key": key, "operator": "Exists", "effect": effect})
    return tols


def _requirement(req: dict, value: str | None) -> bool:
    op, values = req.get("operator"), req.get("values") or []
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and values:
        try:
            a, b = int(value), int(values[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


def node_affinity_matches(spec: dict, node: dict) -> bool:
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    req = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if not req:
        return True
    fields = {"metadata.name": node["metadata"]["name"]}
    for term in req.get("nodeSelectorTerms") or []:
        if all(_requirement(r, labels.get(r.get("key"))) for r in term.get("matchExpressions") or []) and \
                all(_requirement(r, fields.get(r.get("key"))) for r in term.get("matchFields") or []):
            if term.get("matchExpressions") or term.get("matchFields"):
                return True
    return False


def should_run(spec: dict, node: dict) -> tuple[bool, bool]:
    """(should run, should continue running) for a daemon pod with this spec on this node."""
    if not node_affinity_matches(spec, node):
        return False, False
    tols = daemon_tolerations(spec)
    run, keep = True, True
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(t, taint) for t in tols):
            run = False
            if taint["effect"] == "NoExecute":
                keep = False
    return run, keep


def target_node(pod: dict) -> str | None:
    """The node a daemon pod is for: its nodeName, or the node its affinity pins it to."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    req = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in req.get("nodeSelectorTerms") or []:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and len(f.get("values") or []) == 1:
                return f["values"][0]
    return None


class DaemonSetController(Controller):
    name = "daemonset"

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.expectations = Expectations()
        self.dss = ctx.informers.get(DAEMONSETS)
        self.pods = ctx.informers.get(PODS)
        self.nodes = ctx.informers.get(NODES)
        self.revisions = None
        if any(d.res == CONTROLLERREVISIONS for d in ctx.discovered):
            self.revisions = ctx.informers.get(CONTROLLERREVISIONS)
        self.dss.add_handler(self._ds_event)
        self.pods.add_handler(self._pod_event)
        self.nodes.add_handler(self._node_event)

    def _ds_event(self, type_: str, ds: dict, old: dict | None) -> None:
        if type_ == "DELETED":
            self.expectations.delete(key_of(ds))
        self.enqueue(ds)

    def _owner_key(self, pod: dict) -> str | None:
        return controller_key(pod, "DaemonSet", self.dss)

    def _pod_event(self, type_: str, pod: dict, old: dict | None) -> None:
        key = self._owner_key(pod)
        if key is None:
            if type_ != "DELETED":  # an orphan some DaemonSet may adopt
                for ds in self.dss.list(pod["metadata"].get("namespace", "")):
                    if selector_matches(ds["spec"].get("selector"), pod["metadata"].get("labels")):
                        self.enqueue(ds)
            return
        if type_ == "ADDED":
            self.expectations.creation_observed(key)
        if type_ == "DELETED" or is_deleting(pod):
            self.expectations.deletion_observed(key, key_of(pod))
        self.queue.add(key)
        ds = self.dss.get_key(key)
        min_ready = ((ds or {}).get("spec") or {}).get("minReadySeconds") or 0
        if min_ready and pod_ready(pod) and (old is None or not pod_ready(old)):
            self.queue.add_after(key, min_ready + 0.5)

    def _node_event(self, type_: str, node: dict, old: dict | None) -> None:
        if old is not None and type_ == "MODIFIED" and \
                old["metadata"].get("labels") == node["metadata"].get("labels") and \
                (old.get("spec") or {}).get("taints") == (node.get("spec") or {}).get("taints"):
            return  # a status heartbeat: nothing that changes eligibility
        for ds in self.dss.list():
            self.enqueue(ds)

    # ---- pieces ----

    async def claim(self, ds: dict) -> list[dict]:
        md = ds["metadata"]
        mine = []
        for p in self.pods.list(md["namespace"]):
            ref = controller_ref(p)
            matches = selector_matches(ds["spec"].get("selector"), p["metadata"].get("labels"))
            if ref is not None:
                if ref.get("uid") != md["uid"]:
                    continue
                if matches or is_deleting(ds):
                    mine.append(p)
                else:
                    await self.set_owner_refs(PODS, p, [r for r in p["metadata"].get("ownerReferences") or []
                                               if r.get("uid") != md["uid"]])
                continue
            if matches and not is_deleting(ds) and not is_deleting(p):
                adopted = await self.set_owner_refs(PODS, p, (p["metadata"].get("ownerReferences") or []) + [owner_ref(ds)])
                if adopted is not None:
                    mine.append(adopted)
        return mine


    async def record_revision(self, ds: dict, h: str) -> None:
        """A ControllerRevision per template (when served): what `kubectl rollout history` reads."""
        if self.revisions is None:
            return
        md = ds["metadata"]
        mine = [r for r in self.revisions.list(md["namespace"])
                if (controller_ref(r) or {}).get("uid") == md["uid"]]
        top = max([r.get("revision", 0) for r in mine] or [0])
        cur = next((r for r in mine if (r["metadata"].get("labels") or {}).get(HASH_LABEL) == h), None)
        if cur is not None:
            if cur.get("revision", 0) < top:  # back to an older template: it becomes the newest
                await self.api.update(CONTROLLERREVISIONS, {**cur, "revision": top + 1}, md["namespace"])
            return
        template = copy.deepcopy(ds["spec"]["template"])
        template["$patch"] = "replace"
        rev = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
               "metadata": {"name": f"{md['name']}-{h}", "namespace": md["namespace"],
                            "labels": {**(ds["spec"].get("selector") or {}).get("matchLabels", {}), HASH_LABEL: h},
                            "ownerReferences": [owner_ref(ds)]},
               "data": {"spec": {"template": template}}, "revision": top + 1}
        try:
            await self.api.create(CONTROLLERREVISIONS, rev, md["namespace"])
        except AlreadyExists:
            pass

    def new_pod(self, ds: dict, node: str, h: str) -> dict:
        template = copy.deepcopy(ds["spec"]["template"])
        labels = template.setdefault("metadata", {}).setdefault("labels", {})
        labels[HASH_LABEL] = h
        labels[TEMPLATE_GENERATION] = str(ds["metadata"].get("generation", 1))
        spec = template.setdefault("spec", {})
        spec["tolerations"] = daemon_tolerations(spec)
        spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})[
            "requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": [node]}]}]}
        return pod_from_template(template, ds, ds["metadata"]["name"] + "-")

    async def sync(self, key: str) -> None:
        ds = self.dss.get_key(key)
        if ds is None:
            self.expectations.delete(key)
            return
        pods = await self.claim(ds)
        h = template_hash(ds["spec"].get("template") or {})
        if is_deleting(ds):
            return
        await self.record_revision(ds, h)
        by_node: dict[str, list[dict]] = {}
        for p in pods:
            n = target_node(p)
            if n:
                by_node.setdefault(n, []).append(p)
        nodes = {n["metadata"]["name"]: n for n in self.nodes.list()}
        spec = ds["spec"]["template"].get("spec") or {}
        eligible = {name for name, n in nodes.items() if should_run(spec, n)[0]}
        err = None
        if self.expectations.satisfied(key):
            err = await self.manage(ds, nodes, by_node, spec, h)
            strategy = ds["spec"].get("updateStrategy") or {}
            if err is None and strategy.get("type", "RollingUpdate") == "RollingUpdate" and \
                    self.expectations.satisfied(key):
                err = await self.rolling_update(ds, eligible, by_node, h)
        await self.write_status(ds, eligible, by_node, h)
        if err is not None:
            raise err

    async def manage(self, ds: dict, nodes: dict[str, dict], by_node: dict[str, list[dict]], spec: dict,
                     h: str) -> Exception | None:
        key = key_of(ds)
        create: list[str] = []
        delete: list[dict] = []
        for name, node in nodes.items():
            run, keep = should_run(spec, node)
            pods = by_node.get(name, [])
            if not keep:
                delete += [p for p in pods if not is_deleting(p)]
                continue
            running = []
            for p in pods:
                if is_deleting(p):
                    continue
                if (p.get("status") or {}).get("phase") == "Failed":
                    self.events.emit(ds, "Warning", "FailedDaemonPod",
                                     f"Found failed daemon pod {p['metadata']['namespace']}/{p['metadata']['name']} "
                                     f"on node {name}, will try to kill it")
                    delete.append(p)
                    continue
                running.append(p)
            running.sort(key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]))
            if not running and run:
                create.append(name)
            elif len(running) > 1 and self.surge(ds, len(nodes)) > 0:
                # surging: one old and one new pod may share a node; the old goes once the new
                # one is available; anything beyond the oldest of each goes at once
                new = [p for p in running if (p["metadata"].get("labels") or {}).get(HASH_LABEL) == h]
                old = [p for p in running if p not in new]
                keep_pods = new[:1] + old[:1]
                if new and old and pod_available(new[0], ds["spec"].get("minReadySeconds") or 0):
                    keep_pods = new[:1]
                delete += [p for p in running if p not in keep_pods]
            elif len(running) > 1:
                delete += running[1:]
        for name, pods in by_node.items():  # pods for nodes that no longer exist
            if name not in nodes:
                delete += [p for p in pods if not is_deleting(p)]
        return await self.apply(ds, key, create, delete, h)

    async def apply(self, ds: dict, key: str, create: list[str], delete: list[dict], h: str) -> Exception | None:
        if create:
            self.expectations.expect_creations(key, len(create))
            todo = list(create)

            async def one():
                node = todo.pop()
                try:
                    pod = await self.api.create(PODS, self.new_pod(ds, node, h), ds["metadata"]["namespace"])
                except ApiError:
                    self.expectations.creation_observed(key)
                    raise
                self.events.emit(ds, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
            ok, err = await slow_start_batch(len(create), one)
            for _ in range(len(create) - ok - (1 if err else 0)):
                self.expectations.creation_observed(key)
            if err is not None:
                self.events.emit(ds, "Warning", "FailedCreate", f"Error creating: {err}")
                return err
        if delete:
            self.expectations.expect_deletions(key, [key_of(p) for p in delete])
            for p in delete:
                try:
                    await self.api.delete(PODS, p["metadata"]["name"], p["metadata"]["namespace"],
                                          uid=p["metadata"]["uid"])
                    self.events.emit(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}")
                except (NotFound, Conflict):
                    self.expectations.deletion_observed(key, key_of(p))
        return None

    @staticmethod
    def surge(ds: dict, n: int) -> int:
        ru = ((ds["spec"].get("updateStrategy") or {}).get("rollingUpdate")) or {}
        return resolve_int_or_percent(ru.get("maxSurge", 0), n, True)

    async def rolling_update(self, ds: dict, eligible: set[str], by_node: dict[str, list[dict]],
                             h: str) -> Exception | None:
        ru = (ds["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}
        min_ready = ds["spec"].get("minReadySeconds") or 0
        now = time.time()
        max_surge = self.surge(ds, len(eligible))
        if max_surge > 0:
            return await self.surge_update(ds, eligible, by_node, h, max_surge, min_ready, now)
        max_unavailable = resolve_int_or_percent(ru.get("maxUnavailable", 1), len(eligible), True)
        max_unavailable = max(max_unavailable, 1) if eligible else 0
        unavailable = 0
        replace_free: list[dict] = []
        candidates: list[dict] = []
        for name in sorted(eligible):
            pods = [p for p in by_node.get(name, []) if not is_deleting(p)]
            new = [p for p in pods if (p["metadata"].get("labels") or {}).get(HASH_LABEL) == h]
            old = [p for p in pods if p not in new]
            if len(pods) != 1:
                unavailable += 1  # none yet, or several: the per-node rule is at work
            elif new:
                if not pod_available(new[0], min_ready, now):
                    unavailable += 1
            elif not pod_available(old[0], min_ready, now):
                replace_free.append(old[0])
            elif unavailable < max_unavailable:
                candidates.append(old[0])
        room = max(0, min(max_unavailable - unavailable, len(candidates)))
        victims = replace_free + candidates[:room]
        if victims:
            return await self.apply(ds, key_of(ds), [], victims, h)
        return None

    async def surge_update(self, ds: dict, eligible: set[str], by_node: dict[str, list[dict]], h: str,
                           max_surge: int, min_ready: int, now: float) -> Exception | None:
        """maxSurge > 0 (upstream's surging rolling update): a new pod starts beside the old one on
        up to maxSurge nodes at a time (on any node whose old pod is unavailable, at once); the
        per-node rule in manage() removes the old pod when the new one is available."""
        surging = 0
        allowed: list[str] = []
        candidates: list[str] = []
        for name in sorted(eligible):
            pods = [p for p in by_node.get(name, []) if not is_deleting(p)]
            new = [p for p in pods if (p["metadata"].get("labels") or {}).get(HASH_LABEL) == h]
            old = [p for p in pods if p not in new]
            if len(new) > 1 or len(old) > 1:
                surging += 1  # manage() is cleaning this node up
            elif new and old:
                if not pod_available(new[0], min_ready, now):
                    surging += 1  # waiting for the new one
            elif old:
                (candidates if pod_available(old[0], min_ready, now) else allowed).append(name)
        room = max(0, min(max_surge - surging, len(candidates)))
        create = allowed + candidates[:room]
        if create:
            return await self.apply(ds, key_of(ds), create, [], h)
        return None

    async def write_status(self, ds: dict, eligible: set[str], by_node: dict[str, list[dict]], h: str) -> None:
        min_ready = ds["spec"].get("minReadySeconds") or 0
        now = time.time()
        current = misscheduled = ready = available = updated = 0
        for name, pods in by_node.items():
            pods = [p for p in pods if not is_deleting(p)]
            if not pods:
                continue
            if name in eligible:
                current += 1
                p = sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "")[0]
                if pod_ready(p):
                    ready += 1
                    if pod_available(p, min_ready, now):
                        available += 1
                if (p["metadata"].get("labels") or {}).get(HASH_LABEL) == h:
                    updated += 1
            else:
                misscheduled += 1
        desired = len(eligible)
        st = {"currentNumberScheduled": current, "numberMisscheduled": misscheduled,
              "desiredNumberScheduled": desired, "numberReady": ready,
              "observedGeneration": ds["metadata"].get("generation", 1),
              "updatedNumberScheduled": updated, "numberAvailable": available,
              "numberUnavailable": max(0, desired - available)}
        st = {k: v for k, v in st.items() if v or k in ("currentNumberScheduled", "numberMisscheduled",
                                                         "desiredNumberScheduled", "numberReady")}
        if min_ready and ready > available:
            self.queue.add_after(key_of(ds), min_ready)  # re-count once they have been ready long enough
        old = ds.get("status") or {}
        if {k: old.get(k) for k in st} == st and set(old) - {"conditions", "collisionCount"} <= set(st):
            return
        if old.get("collisionCount"):
            st["collisionCount"] = old["collisionCount"]
        await self.api.update_status(DAEMONSETS, {**ds, "status": st}, ds["metadata"]["namespace"])
