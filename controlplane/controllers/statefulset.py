"""The StatefulSet controller: pods with stable names and storage, started and stopped in order.

Pod `<set>-<i>` for ordinal i in [start, start + replicas) keeps its name, hostname (with
`subdomain: <serviceName>`, its DNS name through the headless Service) and, for each
volumeClaimTemplate, its PersistentVolumeClaim `<template>-<set>-<i>`, created before the pod and
never deleted with it (persistentVolumeClaimRetentionPolicy Retain). Until the storage work binds
claims, such pods wait, as they would upstream on a cluster without a provisioner. Labels:
statefulset.kubernetes.io/pod-name, apps.kubernetes.io/pod-index, controller-revision-hash.

podManagementPolicy:
  OrderedReady  create the lowest missing ordinal only when every lower one is Running and Ready
                (available, with minReadySeconds); remove the highest ordinal first, one at a
                time, and only when the others are healthy; a failed pod is deleted and re-created.
  Parallel      create and delete all at once.

Revisions are ControllerRevisions `<set>-<hash>` holding the template. currentRevision is what
the pods ran before the last template change, updateRevision the newest. RollingUpdate replaces
pods from the highest ordinal down to `partition` (pods below it keep the current revision), one
at a time, each only once the set is otherwise healthy; when every pod runs the update revision,
it becomes current. OnDelete replaces a pod only when the user deletes it.
"""

from __future__ import annotations

import copy
import time

from apiclient import PODS, AlreadyExists, Conflict, NotFound

from controlplane.controllers.base import Context, Controller
from controlplane.controllers.deployment import template_hash
from controlplane.controllers.meta import (
    CONTROLLERREVISIONS, PVCS, STATEFULSETS, controller_ref, is_deleting, owner_ref, pod_available,
    pod_ready)

POD_NAME = "statefulset.kubernetes.io/pod-name"
POD_INDEX = "apps.kubernetes.io/pod-index"
HASH_LABEL = "controller-revision-hash"


def ordinal_of(sts: dict, pod: dict) -> int | None:
    prefix = sts["metadata"]["name"] + "-"
    name = pod["metadata"]["name"]
    if not name.startswith(prefix) or not name[len(prefix):].isdigit():
        return None
    return int(name[len(prefix):])


def healthy(pod: dict, min_ready: int) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and pod_available(pod, min_ready) \
        and not is_deleting(pod)


class StatefulSetController(Controller):
    name = "statefulset"
    requires = (("apps", "statefulsets"), ("apps", "controllerrevisions"))

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.sets = ctx.informers.get(STATEFULSETS)
        self.pods = ctx.informers.get(PODS)
        self.revisions = ctx.informers.get(CONTROLLERREVISIONS)
        self.claims_served = any(d.res == PVCS for d in ctx.discovered)
        self.sets.add_handler(self.on_change)
        self.pods.add_handler(self._pod_event)

    def _pod_event(self, type_: str, pod: dict, old: dict | None) -> None:
        ref = controller_ref(pod)
        if ref and ref.get("kind") == "StatefulSet":
            self.queue.add(f"{pod['metadata']['namespace']}/{ref.get('name')}")
            sts = self.sets.get(pod["metadata"]["namespace"], ref.get("name", ""))
            min_ready = ((sts or {}).get("spec") or {}).get("minReadySeconds") or 0
            if min_ready and pod_ready(pod):
                self.queue.add_after(f"{pod['metadata']['namespace']}/{ref.get('name')}", min_ready + 0.5)

    # ---- revisions ----

    async def revisions_for(self, sts: dict) -> tuple[dict, dict]:
        """(current revision, update revision), creating the update revision if needed."""
        md = sts["metadata"]
        mine = [r for r in self.revisions.list(md["namespace"])
                if (controller_ref(r) or {}).get("uid") == md["uid"]]
        h = template_hash(sts["spec"]["template"])
        top = max([r.get("revision", 0) for r in mine] or [0])
        update = next((r for r in mine if (r["metadata"].get("labels") or {}).get(HASH_LABEL) == h), None)
        if update is None:
            template = copy.deepcopy(sts["spec"]["template"])
            template["$patch"] = "replace"
            body = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                    "metadata": {"name": f"{md['name']}-{h}", "namespace": md["namespace"],
                                 "labels": {**((sts["spec"].get("selector") or {}).get("matchLabels") or {}),
                                            HASH_LABEL: h},
                                 "ownerReferences": [owner_ref(sts)]},
                    "data": {"spec": {"template": template}}, "revision": top + 1}
            try:
                update = await self.api.create(CONTROLLERREVISIONS, body, md["namespace"])
            except AlreadyExists:
                update = await self.api.get(CONTROLLERREVISIONS, body["metadata"]["name"], md["namespace"])
        elif update.get("revision", 0) < top and update["metadata"]["name"] != \
                (sts.get("status") or {}).get("updateRevision"):
            update = await self.api.update(CONTROLLERREVISIONS, {**update, "revision": top + 1}, md["namespace"])
        cur_name = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in mine if r["metadata"]["name"] == cur_name), None) or update
        return current, update

    # ---- pods ----

    def new_pod(self, sts: dict, ordinal: int, revision: dict) -> dict:
        template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template")
                                 or sts["spec"]["template"])
        template.pop("$patch", None)
        name = f"{sts['metadata']['name']}-{ordinal}"
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": name, "namespace": sts["metadata"]["namespace"],
            "labels": {**((template.get("metadata") or {}).get("labels") or {}), POD_NAME: name,
                       POD_INDEX: str(ordinal), HASH_LABEL: revision["metadata"]["name"]},
            "ownerReferences": [owner_ref(sts)]}, "spec": template.get("spec") or {}}
        if (template.get("metadata") or {}).get("annotations"):
            pod["metadata"]["annotations"] = template["metadata"]["annotations"]
        spec = pod["spec"]
        spec["hostname"] = name
        if sts["spec"].get("serviceName"):
            spec["subdomain"] = sts["spec"]["serviceName"]
        vols = [v for v in spec.get("volumes") or []
                if v.get("name") not in {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates") or []}]
        for t in sts["spec"].get("volumeClaimTemplates") or []:
            vols.append({"name": t["metadata"]["name"], "persistentVolumeClaim": {
                "claimName": f"{t['metadata']['name']}-{name}"}})
        if vols:
            spec["volumes"] = vols
        return pod

    async def ensure_claims(self, sts: dict, ordinal: int) -> None:
        if not self.claims_served:
            return
        ns = sts["metadata"]["namespace"]
        for t in sts["spec"].get("volumeClaimTemplates") or []:
            claim = copy.deepcopy(t)
            claim.pop("status", None)
            claim["apiVersion"], claim["kind"] = "v1", "PersistentVolumeClaim"
            md = claim.setdefault("metadata", {})
            md["name"] = f"{t['metadata']['name']}-{sts['metadata']['name']}-{ordinal}"
            md["namespace"] = ns
            md["labels"] = {**(md.get("labels") or {}),
                            **((sts["spec"].get("selector") or {}).get("matchLabels") or {})}
            try:
                await self.api.create(PVCS, claim, ns)
            except AlreadyExists:
                pass

    async def sync(self, key: str) -> None:
        sts = self.sets.get_key(key)
        if sts is None or is_deleting(sts):
            return
        spec = sts["spec"]
        md = sts["metadata"]
        current, update = await self.revisions_for(sts)
        start = ((spec.get("ordinals") or {}).get("start")) or 0
        replicas = spec.get("replicas", 1)
        wanted = range(start, start + replicas)
        pods = {}
        condemned = []
        for p in self.pods.list(md["namespace"]):
            if (controller_ref(p) or {}).get("uid") != md["uid"]:
                continue
            o = ordinal_of(sts, p)
            if o is not None and o in wanted:
                pods[o] = p
            else:
                condemned.append(p)
        parallel = spec.get("podManagementPolicy") == "Parallel"
        min_ready = spec.get("minReadySeconds") or 0
        strategy = spec.get("updateStrategy") or {}
        partition = ((strategy.get("rollingUpdate") or {}).get("partition")) or 0
        monotonic = not parallel
        for o in wanted:
            p = pods.get(o)
            if p is not None and (p.get("status") or {}).get("phase") == "Failed" and not is_deleting(p):
                await self._delete(sts, p)  # re-created on a later sync
                if monotonic:
                    break
                continue
            if p is None:
                rev = current if (o < partition and strategy.get("type", "RollingUpdate") == "RollingUpdate") \
                    else update
                if strategy.get("type") == "OnDelete":
                    rev = update
                await self.ensure_claims(sts, o)
                try:
                    created = await self.api.create(PODS, self.new_pod(sts, o, rev), md["namespace"])
                    pods[o] = created
                    self.events.emit(sts, "Normal", "SuccessfulCreate",
                                     f"create Pod {created['metadata']['name']} in StatefulSet {md['name']} successful")
                except AlreadyExists:
                    pass  # the old pod of that name is still terminating
                if monotonic:
                    break  # wait for it to become ready
                continue
            if monotonic and not healthy(p, min_ready):
                break  # OrderedReady: nothing beyond an ordinal that is not up
        else:
            await self.scale_down_and_update(sts, pods, condemned, update, parallel, min_ready, partition)
        await self.write_status(sts, pods, current, update, min_ready)

    async def scale_down_and_update(self, sts: dict, pods: dict[int, dict], condemned: list[dict], update: dict,
                                    parallel: bool, min_ready: int, partition: int) -> None:
        live = [p for p in condemned if not is_deleting(p)]
        if live:
            victims = sorted(live, key=lambda p: -(ordinal_of(sts, p) or 0))
            if not parallel:
                if any(is_deleting(p) for p in condemned) or \
                        not all(healthy(p, min_ready) for p in pods.values()):
                    return
                victims = victims[:1]
            for p in victims:
                await self._delete(sts, p)
            return
        if condemned and not parallel:
            return  # wait for the previous one to go
        strategy = sts["spec"].get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        if any(is_deleting(p) for p in pods.values()) or not all(healthy(p, min_ready) for p in pods.values()):
            return  # one at a time, each when the rest is healthy
        for o in sorted(pods, reverse=True):
            if o < partition:
                break
            p = pods[o]
            if (p["metadata"].get("labels") or {}).get(HASH_LABEL) != update["metadata"]["name"]:
                await self._delete(sts, p)
                return

    async def _delete(self, sts: dict, pod: dict) -> None:
        try:
            await self.api.delete(PODS, pod["metadata"]["name"], pod["metadata"]["namespace"], uid=pod["metadata"]["uid"])
            self.events.emit(sts, "Normal", "SuccessfulDelete",
                             f"delete Pod {pod['metadata']['name']} in StatefulSet {sts['metadata']['name']} successful")
        except (NotFound, Conflict):
            pass

    async def write_status(self, sts: dict, pods: dict[int, dict], current: dict, update: dict,
                           min_ready: int) -> None:
        live = [p for p in pods.values() if not is_deleting(p)]
        now = time.time()
        upd_name, cur_name = update["metadata"]["name"], current["metadata"]["name"]
        updated = sum(1 for p in live if (p["metadata"].get("labels") or {}).get(HASH_LABEL) == upd_name)
        st = {"observedGeneration": sts["metadata"].get("generation", 1), "replicas": len(live),
              "readyReplicas": sum(1 for p in live if pod_ready(p)),
              "availableReplicas": sum(1 for p in live if pod_available(p, min_ready, now)),
              "currentReplicas": sum(1 for p in live if (p["metadata"].get("labels") or {}).get(HASH_LABEL) == cur_name),
              "updatedReplicas": updated, "currentRevision": cur_name, "updateRevision": upd_name,
              "collisionCount": (sts.get("status") or {}).get("collisionCount", 0)}
        if updated == sts["spec"].get("replicas", 1) and updated == len(live):
            st["currentRevision"], st["currentReplicas"] = upd_name, updated  # the update is complete
        st = {k: v for k, v in st.items() if v or k in ("replicas", "observedGeneration", "collisionCount",
                                                         "availableReplicas")}
        if st == {k: v for k, v in (sts.get("status") or {}).items() if k != "conditions"}:
            return
        if (sts.get("status") or {}).get("conditions"):
            st["conditions"] = sts["status"]["conditions"]
        await self.api.update_status(STATEFULSETS, {**sts, "status": st}, sts["metadata"]["namespace"])
