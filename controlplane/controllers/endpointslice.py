"""The EndpointSlice controller: a selecting Service's pods as EndpointSlices of ≤ 100 endpoints.

EndpointSlices replaced Endpoints because one object per Service grew too big to rewrite on every
pod change: slices hold at most --max-endpoints-per-slice (100) endpoints, so a change rewrites
one slice. Ours carry the labels kube-proxy and others select on:

    kubernetes.io/service-name: <svc>
    endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io

and an ownerReference to the Service (so the GC removes them with it). Each endpoint is one pod:
its IP, nodeName, zone (the node's topology.kubernetes.io/zone), a targetRef, and three conditions:

    serving      the pod is Ready (or the Service publishes not-ready addresses)
    terminating  the pod is being deleted — such pods stay listed, so a proxy can drain them
    ready        serving and not terminating

Endpoints are grouped by their resolved ports (a named targetPort may differ between pods).
Reconciling keeps each endpoint in the slice it is already in when it can (fewer writes, upstream's
aim too), fills slices with room, creates new slices for the rest, and deletes slices left empty;
a Service with no endpoints at all keeps one empty placeholder slice, as upstream does.
"""

from __future__ import annotations

import copy

from apiclient import ENDPOINTSLICES, NODES, Conflict, NotFound

from controlplane.controllers.base import Context
from controlplane.controllers.endpoint import HEADLESS, ServiceWatcher, in_endpoints, pod_port
from controlplane.controllers.meta import controller_ref, owner_ref, pod_ready

MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
SERVICE_NAME = "kubernetes.io/service-name"
MAX_PER_SLICE = 100


def _ports_key(ports: list[dict]) -> tuple:
    return tuple(sorted((p.get("name", ""), p.get("port"), p.get("protocol", "TCP"), p.get("appProtocol", ""))
                        for p in ports))


class EndpointSliceController(ServiceWatcher):
    name = "endpointslice"

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.slices = ctx.informers.get(ENDPOINTSLICES)
        self.nodes = ctx.informers.get(NODES)
        self.slices.add_handler(self._slice_event)
        # What we wrote and the informer has not shown yet (upstream's endpointSliceTracker):
        # service key → {slice name: resourceVersion written, or None for deleted}. A sync on a
        # cache older than our own writes would create duplicates, so it waits instead.
        self.written: dict[str, dict[str, int | None]] = {}

    def _slice_event(self, type_: str, sl: dict, old: dict | None) -> None:
        labels = sl["metadata"].get("labels") or {}
        if labels.get(MANAGED_BY) == CONTROLLER_NAME and labels.get(SERVICE_NAME):
            self.queue.add(f"{sl['metadata']['namespace']}/{labels[SERVICE_NAME]}")

    def address_type(self, svc: dict) -> str:
        fams = (svc.get("spec") or {}).get("ipFamilies") or ["IPv4"]
        return fams[0]

    def desired(self, svc: dict) -> dict[tuple, tuple[list[dict], dict[str, dict]]]:
        """ports key → (ports, {ip: endpoint})."""
        spec = svc["spec"]
        publish = bool(spec.get("publishNotReadyAddresses"))
        family = self.address_type(svc)
        out: dict[tuple, tuple[list[dict], dict[str, dict]]] = {}
        for pod in self.selected_pods(svc):
            if not in_endpoints(pod, True):
                continue
            ip = pod["status"]["podIP"]
            if (":" in ip) != (family == "IPv6"):
                continue
            ports = []
            for sp in spec.get("ports") or []:
                n = pod_port(pod, sp)
                if n is None:
                    continue
                port = {"name": sp.get("name", ""), "port": n, "protocol": sp.get("protocol", "TCP")}
                if sp.get("appProtocol"):
                    port["appProtocol"] = sp["appProtocol"]
                ports.append(port)
            terminating = bool(pod["metadata"].get("deletionTimestamp"))
            serving = publish or pod_ready(pod)
            ep = {"addresses": [ip],
                  "conditions": {"ready": serving and not terminating, "serving": serving,
                                 "terminating": terminating},
                  "targetRef": {"kind": "Pod", "namespace": pod["metadata"]["namespace"],
                                "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}}
            node_name = pod["spec"].get("nodeName")
            if node_name:
                ep["nodeName"] = node_name
                node = self.nodes.get("", node_name)
                zone = ((node or {}).get("metadata", {}).get("labels") or {}).get("topology.kubernetes.io/zone")
                if zone:
                    ep["zone"] = zone
            if pod["spec"].get("hostname") and pod["spec"].get("subdomain") == svc["metadata"]["name"]:
                ep["hostname"] = pod["spec"]["hostname"]
            pk = _ports_key(ports)
            out.setdefault(pk, (sorted(ports, key=lambda p: (p["name"], p["port"])), {}))[1][ip] = ep
        return out

    def slice_meta(self, svc: dict) -> dict:
        labels = {k: v for k, v in (svc["metadata"].get("labels") or {}).items()
                  if k not in (MANAGED_BY, SERVICE_NAME)}
        labels[SERVICE_NAME] = svc["metadata"]["name"]
        labels[MANAGED_BY] = CONTROLLER_NAME
        if svc["spec"].get("clusterIP") == "None":
            labels[HEADLESS] = ""
        return {"generateName": svc["metadata"]["name"][:57] + "-", "namespace": svc["metadata"]["namespace"],
                "labels": labels, "ownerReferences": [owner_ref(svc)]}

    def stale(self, key: str, ns: str) -> bool:
        expect = self.written.get(key)
        if not expect:
            return False
        for slice_name, rv in list(expect.items()):
            cur = self.slices.get(ns, slice_name)
            if rv is None and cur is None or rv is not None and cur is not None and \
                    int(cur["metadata"]["resourceVersion"]) >= rv:
                del expect[slice_name]
        if not expect:
            del self.written[key]
            return False
        return True

    async def sync(self, key: str) -> None:
        svc = self.services.get_key(key)
        ns, name = key.split("/", 1)
        if self.stale(key, ns):
            self.queue.add_after(key, 0.05)
            return
        ours = [s for s in self.slices.list(ns)
                if (s["metadata"].get("labels") or {}).get(SERVICE_NAME) == name and
                (s["metadata"].get("labels") or {}).get(MANAGED_BY) == CONTROLLER_NAME]
        if svc is None or not (svc.get("spec") or {}).get("selector"):
            for s in ours:  # the GC would get them too (ownerReference); don't wait for it
                await self._delete(s)
            self.written.pop(key, None)
            return
        ours = [s for s in ours if (controller_ref(s) or {}).get("uid") in (None, svc["metadata"]["uid"])]
        family = self.address_type(svc)
        meta = self.slice_meta(svc)
        want = self.desired(svc)
        by_ports: dict[tuple, list[dict]] = {}
        stale: list[dict] = []
        for s in sorted(ours, key=lambda s: s["metadata"]["name"]):
            if s.get("addressType") != family:
                stale.append(s)
            else:
                by_ports.setdefault(_ports_key(s.get("ports") or []), []).append(s)
        writes: list[tuple[str, dict]] = []  # ("create"|"update", slice)
        for pk, (ports, eps) in want.items():
            remaining = dict(eps)
            placed: list[tuple[dict, list[dict]]] = []
            for s in by_ports.pop(pk, []):  # keep endpoints where they are
                kept = [remaining.pop(e["addresses"][0]) for e in s.get("endpoints") or []
                        if e.get("addresses") and e["addresses"][0] in remaining]
                placed.append((s, kept))
            for s, kept in placed:  # fill slices with room
                while len(kept) < MAX_PER_SLICE and remaining:
                    kept.append(remaining.pop(next(iter(remaining))))
            for s, kept in placed:
                if not kept:
                    stale.append(s)
                    continue
                new = self._with(s, meta, ports, kept)
                if new != s:
                    writes.append(("update", new))
            rest = sorted(remaining.values(), key=lambda e: e["addresses"][0])
            for i in range(0, len(rest), MAX_PER_SLICE):
                writes.append(("create", {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                                          "metadata": copy.deepcopy(meta), "addressType": family,
                                          "ports": ports, "endpoints": rest[i:i + MAX_PER_SLICE]}))
        for left in by_ports.values():
            stale.extend(left)
        if not want:  # no endpoints: keep (or make) one empty placeholder slice
            keep = next((s for s in stale if not s.get("endpoints") and s.get("addressType") == family), None)
            if keep is None and stale and stale[0].get("addressType") == family:
                keep = stale[0]
            if keep is not None:
                stale.remove(keep)
                new = self._with(keep, meta, [], [])
                if new != keep:
                    writes.append(("update", new))
            else:
                writes.append(("create", {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                                          "metadata": copy.deepcopy(meta), "addressType": family,
                                          "ports": [], "endpoints": []}))
        track = self.written.setdefault(key, {})
        for kind, s in writes:
            if kind == "create":
                out = await self.api.create(ENDPOINTSLICES, s, ns)
            else:
                out = await self.api.update(ENDPOINTSLICES, s, ns)
            track[out["metadata"]["name"]] = int(out["metadata"]["resourceVersion"])
        for s in stale:
            await self._delete(s)
            track[s["metadata"]["name"]] = None
        if not track:
            del self.written[key]

    def _with(self, s: dict, meta: dict, ports: list[dict], eps: list[dict]) -> dict:
        new = copy.deepcopy(s)
        new["metadata"]["labels"] = meta["labels"]
        new["metadata"]["ownerReferences"] = meta["ownerReferences"]
        new["ports"] = ports
        new["endpoints"] = sorted(eps, key=lambda e: e["addresses"][0])
        return new

    async def _delete(self, s: dict) -> None:
        try:
            await self.api.delete(ENDPOINTSLICES, s["metadata"]["name"], s["metadata"]["namespace"],
                                  uid=s["metadata"]["uid"])
        except (NotFound, Conflict):
            pass
