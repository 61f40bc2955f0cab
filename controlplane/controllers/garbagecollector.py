"""The garbage collector: delete dependents whose owners are gone; orphan or foreground-delete
dependents when the owner's DELETE asked for it (the API server turns propagationPolicy
into the finalizers `orphan` / `foregroundDeletion`: controlplane/apiserver/objects.py).

An object names its owners in `metadata.ownerReferences` (apiVersion, kind, name, uid,
blockOwnerDeletion). The GC watches every resource it may delete (discovery; not Events) and
keeps a graph: uid → the object and its owners, owner uid → dependent uids. The graph is the one
place that sees across kinds — a ConfigMap owned by a Deployment is as collectable as a pod owned
by a ReplicaSet.

Work items are uids; one sync looks at the object's current state and does one of three things
(upstream's attemptToDeleteItem / orphanDependents / processDeletingDependentsItem):

  * owner being deleted with the `orphan` finalizer → remove its reference from every dependent,
    then the finalizer (the owner then goes);
  * owner being deleted with `foregroundDeletion` → delete its dependents (foreground again if
    they have dependents of their own); once no dependent with blockOwnerDeletion is left,
    remove the finalizer;
  * an object with owners → classify each owner: *solid* (exists), *dangling* (absent — checked
    with a live GET, since the owner's informer may simply not have caught up, and a uid mismatch
    means a new object of the same name) or *waiting* (being deleted in the foreground). If any
    owner is solid, only the references to dangling/waiting owners are removed; otherwise the
    object is deleted (Foreground if it blocks a waiting owner and has dependents of its own).

Every delete carries a uid precondition, so an object re-created under the same name is never
collected by mistake.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from apiclient import ApiError, Conflict, Informer, NotFound, Resource

from controlplane.controllers.base import Context, Controller, DiscoveredResource

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
IGNORED = {("", "events"), ("events.k8s.io", "events")}


@dataclass
class Node:
    res: Resource
    namespace: str
    name: str
    uid: str
    owners: list[dict]
    finalizers: list[str]
    deleting: bool


class GarbageCollector(Controller):
    name = "garbagecollector"
    # Resources come and go with CustomResourceDefinitions: discovery is asked again this often
    # (upstream's GC resyncs its monitors every 30 s), and at once when an owner's kind is unknown.
    tick_period = 30.0

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.nodes: dict[str, Node] = {}
        self.dependents: dict[str, set[str]] = {}  # owner uid → dependent uids
        self.by_kind: dict[tuple[str, str], DiscoveredResource] = {}  # (group, kind) → resource
        self.monitored: set[tuple[str, str]] = set()  # (group, plural) watched: shared informers
        self.monitors: dict[tuple[str, str], asyncio.Task] = {}  # ... and those found later
        self.rediscover = asyncio.Event()
        for d in ctx.discovered:
            self.by_kind.setdefault((d.res.group, d.kind), d)
            if (d.res.group, d.res.plural) in IGNORED:
                continue
            if {"list", "watch", "delete"} <= set(d.verbs):
                res = d.res
                self.monitored.add((res.group, res.plural))
                ctx.informers.get(res).add_handler(lambda t, o, old, res=res: self._event(res, t, o, old))

    # ---- resources that appear later (CRDs) ----

    async def tick(self) -> None:
        """Runs for the controller's lifetime (the ticker's task): every tick_period, or when
        an owner's kind was unknown, ask discovery again and watch what is new. The informers
        it starts are its children, cancelled with it."""
        from controlplane.controllers.manager import discover  # the manager loads this module
        try:
            while True:
                try:
                    found = await discover(self.api)
                except ApiError as e:
                    self.log.info("garbagecollector: discovery failed: %s", e)
                    found = None
                if found is not None:
                    self._resync(found)
                try:
                    await asyncio.wait_for(self.rediscover.wait(), self.tick_period)
                except asyncio.TimeoutError:
                    pass
                self.rediscover.clear()
        finally:
            for t in self.monitors.values():
                t.cancel()

    def _resync(self, found: list[DiscoveredResource]) -> None:
        served = set()
        for d in found:
            self.by_kind[(d.res.group, d.kind)] = d
            key = (d.res.group, d.res.plural)
            served.add(key)
            if key in IGNORED or key in self.monitored or key in self.monitors or \
                    not {"list", "watch", "delete"} <= set(d.verbs):
                continue
            inf = Informer(self.api, d.res)
            inf.add_handler(lambda t, o, old, res=d.res: self._event(res, t, o, old))
            self.monitors[key] = asyncio.ensure_future(inf.run())
            self.log.info("garbagecollector: now watching %s", f"{d.res.plural}.{d.res.group}")
        for key in [k for k in self.monitors if k not in served]:  # its CRD went away
            self.monitors.pop(key).cancel()

    # ---- the graph ----

    def _event(self, res: Resource, type_: str, obj: dict, old: dict | None) -> None:
        md = obj.get("metadata") or {}
        uid = md.get("uid", "")
        prev = self.nodes.get(uid)
        if prev is not None:
            for ref in prev.owners:
                s = self.dependents.get(ref.get("uid", ""))
                if s is not None:
                    s.discard(uid)
        if type_ == "DELETED":
            self.nodes.pop(uid, None)
            for dep in self.dependents.get(uid, ()):
                self.queue.add(dep)  # their owner is gone: collect them (or drop the reference)
            for ref in md.get("ownerReferences") or []:
                self.queue.add(ref.get("uid", ""))  # an owner waiting for us may now go
            return
        node = Node(res, md.get("namespace", ""), md.get("name", ""), uid,
                    list(md.get("ownerReferences") or []), list(md.get("finalizers") or []),
                    bool(md.get("deletionTimestamp")))
        self.nodes[uid] = node
        for ref in node.owners:
            self.dependents.setdefault(ref.get("uid", ""), set()).add(uid)
        if node.owners or (node.deleting and (ORPHAN in node.finalizers or FOREGROUND in node.finalizers)):
            self.queue.add(uid)
        if prev is not None:  # a dropped reference may unblock a waiting owner
            for ref in prev.owners:
                if ref.get("uid") not in {r.get("uid") for r in node.owners}:
                    self.queue.add(ref.get("uid", ""))

    # ---- sync ----

    async def sync(self, uid: str) -> None:
        node = self.nodes.get(uid)
        if node is None:
            return
        if node.deleting and ORPHAN in node.finalizers:
            await self.orphan_dependents(node)
        elif node.deleting and FOREGROUND in node.finalizers:
            await self.process_foreground(node)
        elif node.owners and not node.deleting:
            await self.attempt_to_delete(node)

    async def orphan_dependents(self, node: Node) -> None:
        for dep_uid in list(self.dependents.get(node.uid, ())):
            dep = self.nodes.get(dep_uid)
            if dep is not None:
                await self.remove_refs(dep, {node.uid})
        await self.remove_finalizer(node, ORPHAN)

    async def process_foreground(self, node: Node) -> None:
        blocking = []
        for dep_uid in list(self.dependents.get(node.uid, ())):
            dep = self.nodes.get(dep_uid)
            if dep is None:
                continue
            ref = next((r for r in dep.owners if r.get("uid") == node.uid), None)
            if ref is not None and ref.get("blockOwnerDeletion"):
                blocking.append(dep)
            if not dep.deleting:
                self.queue.add(dep_uid)  # it will see us waiting and go
        if not blocking:
            await self.remove_finalizer(node, FOREGROUND)

    async def owner_state(self, dep: Node, ref: dict) -> str:
        """'solid', 'dangling' or 'waiting' (being deleted in the foreground)."""
        owner = self.nodes.get(ref.get("uid", ""))
        if owner is not None:
            if owner.deleting and FOREGROUND in owner.finalizers:
                return "waiting"
            return "solid"
        group = (ref.get("apiVersion") or "").rpartition("/")[0]
        d = self.by_kind.get((group, ref.get("kind", "")))
        if d is None:
            self.rediscover.set()  # perhaps a CRD created since the last look: the retry will know
            raise ApiError(0, "UnknownOwnerKind", f"{dep.res.plural}/{dep.name}: owner kind "
                           f"{ref.get('apiVersion')}/{ref.get('kind')} is not served")
        try:
            live = await self.api.get(d.res, ref.get("name", ""), dep.namespace if d.res.namespaced else None)
        except NotFound:
            return "dangling"
        if live["metadata"].get("uid") != ref.get("uid"):
            return "dangling"
        fins = live["metadata"].get("finalizers") or []
        if live["metadata"].get("deletionTimestamp") and FOREGROUND in fins:
            return "waiting"
        return "solid"

    async def attempt_to_delete(self, node: Node) -> None:
        states = {}
        for ref in node.owners:
            states[ref.get("uid", "")] = await self.owner_state(node, ref)
        solid = [u for u, s in states.items() if s == "solid"]
        dangling = {u for u, s in states.items() if s == "dangling"}
        waiting = {u for u, s in states.items() if s == "waiting"}
        if solid:
            if dangling or waiting:
                await self.remove_refs(node, dangling | waiting)
            return
        if waiting and self.dependents.get(node.uid):
            policy = "Foreground"  # it blocks a waiting owner and has its own dependents
        elif ORPHAN in node.finalizers:
            policy = "Orphan"
        elif FOREGROUND in node.finalizers:
            policy = "Foreground"
        else:
            policy = "Background"
        try:
            await self.api.request("DELETE", node.res.path(node.namespace or None, node.name), None,
                                   {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": policy,
                                    "preconditions": {"uid": node.uid}})
            self.log.info("deleted %s %s/%s (owners gone: %s)", node.res.plural, node.namespace,
                          node.name, policy)
        except (NotFound, Conflict):
            pass  # gone already, or a different object now has the name

    async def remove_refs(self, node: Node, uids: set[str]) -> None:
        try:
            cur = await self.api.get(node.res, node.name, node.namespace or None)
        except NotFound:
            return
        if cur["metadata"].get("uid") != node.uid:
            return
        refs = cur["metadata"].get("ownerReferences") or []
        keep = [r for r in refs if r.get("uid") not in uids]
        if len(keep) == len(refs):
            return
        await self.api.patch(node.res, node.name, {"metadata": {
            "ownerReferences": keep or None, "resourceVersion": cur["metadata"]["resourceVersion"]}},
            node.namespace or None)

    async def remove_finalizer(self, node: Node, finalizer: str) -> None:
        def drop(obj: dict) -> dict | None:
            if obj["metadata"].get("uid") != node.uid:
                return None
            fins = obj["metadata"].get("finalizers") or []
            if finalizer not in fins:
                return None
            obj["metadata"]["finalizers"] = [f for f in fins if f != finalizer]
            return obj
        try:
            await self.api.update_with_retry(node.res, node.name, drop, node.namespace or None)
        except NotFound:
            pass
