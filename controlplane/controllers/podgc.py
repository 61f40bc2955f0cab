"""Pod garbage collection: pods nobody else will ever remove (upstream's podgc controller).

Every --podgc-period (20 s upstream's gcCheckPeriod):

  * terminated pods (Succeeded / Failed) beyond --terminated-pod-gc-threshold (12500) are deleted,
    oldest first — finished Job pods would otherwise pile up for ever (0 turns this off);
  * orphaned pods, bound to a node that no longer exists: after the node has been missing for one
    whole period (and a live GET confirms it, in case our cache lags), the pod is marked Failed
    with a DisruptionTarget condition (reason DeletionByPodGC) and deleted at once — no kubelet is
    left to confirm a graceful deletion;
  * terminating pods that were never scheduled: nothing runs them, so they go at once;
  * terminating pods on a node that is not Ready and carries the
    `node.kubernetes.io/out-of-service` taint (an administrator's statement that the node is down
    for good): deleted at once, so their replacements (StatefulSet pods, volumes) can start.
"""

from __future__ import annotations

from apiclient import NODES, PODS, Conflict, NotFound

from controlplane.controllers.base import Context, Controller
from controlplane.controllers.meta import is_deleting, now_rfc3339, pod_terminal

OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"


class PodGCController(Controller):
    name = "podgc"
    workers = 1

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.tick_period = self.options.podgc_period
        self.pods = ctx.informers.get(PODS)
        self.nodes = ctx.informers.get(NODES)
        self.missing_since: dict[str, int] = {}  # node name → the tick it was first seen missing
        self.ticks = 0

    async def sync(self, key: str) -> None:
        """No per-key work: everything happens in tick()."""

    async def tick(self) -> None:
        self.ticks += 1
        pods = self.pods.list()
        await self.gc_terminated(pods)
        await self.gc_orphaned(pods)
        await self.gc_unscheduled_terminating(pods)
        await self.gc_out_of_service(pods)

    async def force_delete(self, pod: dict, why: str) -> None:
        md = pod["metadata"]
        try:
            await self.api.delete(PODS, md["name"], md["namespace"], grace_period_seconds=0, uid=md["uid"])
            self.log.info("deleted pod %s/%s: %s", md["namespace"], md["name"], why)
        except (NotFound, Conflict):
            pass

    async def gc_terminated(self, pods: list[dict]) -> None:
        threshold = self.options.terminated_pod_gc_threshold
        if threshold <= 0:
            return
        done = [p for p in pods if pod_terminal(p) and not is_deleting(p)]
        excess = len(done) - threshold
        if excess <= 0:
            return
        done.sort(key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]))
        for p in done[:excess]:
            await self.force_delete(p, f"more than {threshold} terminated pods")

    async def gc_orphaned(self, pods: list[dict]) -> None:
        bound = {(p.get("spec") or {}).get("nodeName") for p in pods} - {None, ""}
        gone = {n for n in bound if self.nodes.get("", n) is None}
        for n in list(self.missing_since):
            if n not in gone:
                del self.missing_since[n]
        for n in gone:
            self.missing_since.setdefault(n, self.ticks)
        for n in gone:
            if self.ticks - self.missing_since[n] < 1:
                continue  # quarantine: the node may be on its way into our cache
            try:
                await self.api.get(NODES, n)
                continue  # it exists after all
            except NotFound:
                pass
            for p in pods:
                if (p.get("spec") or {}).get("nodeName") == n:
                    await self.mark_failed(p, "PodGC: node no longer exists")
                    await self.force_delete(p, f"node {n} no longer exists")

    async def mark_failed(self, pod: dict, message: str) -> None:
        if pod_terminal(pod):
            return
        st = dict(pod.get("status") or {})
        conds = [c for c in st.get("conditions") or [] if c.get("type") != "DisruptionTarget"]
        conds.append({"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
                      "message": message, "lastTransitionTime": now_rfc3339()})
        st.update(phase="Failed", conditions=conds)
        try:
            await self.api.update_status(PODS, {**pod, "status": st})
        except (NotFound, Conflict):
            pass

    async def gc_unscheduled_terminating(self, pods: list[dict]) -> None:
        for p in pods:
            if is_deleting(p) and not (p.get("spec") or {}).get("nodeName"):
                await self.force_delete(p, "terminating and never scheduled")

    async def gc_out_of_service(self, pods: list[dict]) -> None:
        down = set()
        for node in self.nodes.list():
            ready = next((c.get("status") for c in (node.get("status") or {}).get("conditions") or []
                          if c.get("type") == "Ready"), None)
            if ready != "True" and any(t.get("key") == OUT_OF_SERVICE for t in (node.get("spec") or {}).get("taints") or []):
                down.add(node["metadata"]["name"])
        for p in pods:
            if is_deleting(p) and (p.get("spec") or {}).get("nodeName") in down:
                await self.mark_failed(p, "PodGC: node is out of service")
                await self.force_delete(p, "terminating on an out-of-service node")
