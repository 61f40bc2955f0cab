"""The endpoints controller: a Service's `Endpoints` object lists the pods it selects.

For every Service with a selector (a Service without one is the user's to fill, like the
`kubernetes` Service the API server keeps), the Endpoints of the same name holds, per group of
identical ports, the `addresses` of ready pods and the `notReadyAddresses` of the others
(`publishNotReadyAddresses` puts all in `addresses`). A pod counts once it has an IP and while it
is neither finished nor being deleted. A named `targetPort` ("http") is looked up in each pod's
container ports, so pods of two versions may serve one port name on different numbers — which is
why ports are grouped per pod (upstream's RepackSubsets).

`pod_port`, `services_for_pod` and `ServiceWatcher` are shared with endpointslice.py.
"""

from __future__ import annotations

from apiclient import ENDPOINTS, PODS, SERVICES, AlreadyExists, Conflict, NotFound

from controlplane.controllers.base import Context, Controller
from controlplane.controllers.meta import key_of, labels_match, now_rfc3339, pod_ready, pod_terminal

HEADLESS = "service.kubernetes.io/headless"
TRIGGER = "endpoints.kubernetes.io/last-change-trigger-time"
MAX_ENDPOINTS = 1000  # Endpoints objects are truncated past this (EndpointSlices are not)
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"


def pod_port(pod: dict, svc_port: dict) -> int | None:
    """The container port a service port reaches on this pod (podutil.FindPort)."""
    target = svc_port.get("targetPort", svc_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    proto = svc_port.get("protocol", "TCP")
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == target and p.get("protocol", "TCP") == proto:
                return p.get("containerPort")
    return None


def in_endpoints(pod: dict, include_terminating: bool) -> bool:
    """endpointsliceutil.ShouldPodBeInEndpoints."""
    if pod_terminal(pod) or not (pod.get("status") or {}).get("podIP"):
        return False
    return include_terminating or not pod["metadata"].get("deletionTimestamp")


class ServiceWatcher(Controller):
    """Keys are Services; a pod event queues every Service (before and after) selecting it."""

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.services = ctx.informers.get(SERVICES)
        self.pods = ctx.informers.get(PODS)
        self.services.add_handler(self.on_change)
        self.pods.add_handler(self._pod_event)

    def selected_by(self, pod: dict) -> list[str]:
        ns = pod["metadata"].get("namespace", "")
        labels = pod["metadata"].get("labels") or {}
        return [key_of(s) for s in self.services.list(ns)
                if (s.get("spec") or {}).get("selector") and labels_match(s["spec"]["selector"], labels)]

    def _pod_event(self, type_: str, pod: dict, old: dict | None) -> None:
        keys = set(self.selected_by(pod))
        if old is not None and old["metadata"].get("labels") != pod["metadata"].get("labels"):
            keys |= set(self.selected_by(old))
        for k in keys:
            self.queue.add(k)

    def selected_pods(self, svc: dict) -> list[dict]:
        sel = svc["spec"]["selector"]
        return [p for p in self.pods.list(svc["metadata"]["namespace"])
                if labels_match(sel, p["metadata"].get("labels"))]


class EndpointsController(ServiceWatcher):
    name = "endpoint"

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.endpoints = ctx.informers.get(ENDPOINTS)
        self.endpoints.add_handler(self._ep_event)

    def _ep_event(self, type_: str, ep: dict, old: dict | None) -> None:
        if self.services.get_key(key_of(ep)) is not None:  # someone changed ours: put it back
            self.queue.add(key_of(ep))

    def subsets(self, svc: dict) -> tuple[list[dict], bool]:
        """(subsets, truncated at MAX_ENDPOINTS)."""
        spec = svc["spec"]
        publish = bool(spec.get("publishNotReadyAddresses"))
        groups: dict[tuple, dict] = {}
        count = 0
        truncated = False
        for pod in sorted(self.selected_pods(svc), key=lambda p: p["metadata"]["name"]):
            if not in_endpoints(pod, False):
                continue
            if count >= MAX_ENDPOINTS:
                truncated = True
                continue
            ports = []
            for sp in spec.get("ports") or []:
                n = pod_port(pod, sp)
                if n is None:
                    continue
                port = {"port": n, "protocol": sp.get("protocol", "TCP")}
                if sp.get("name"):
                    port["name"] = sp["name"]
                if sp.get("appProtocol"):
                    port["appProtocol"] = sp["appProtocol"]
                ports.append(port)
            if (spec.get("ports") or []) and not ports:
                continue
            addr = {"ip": pod["status"]["podIP"], "targetRef": {
                "kind": "Pod", "namespace": pod["metadata"]["namespace"], "name": pod["metadata"]["name"],
                "uid": pod["metadata"]["uid"]}}
            if pod["spec"].get("nodeName"):
                addr["nodeName"] = pod["spec"]["nodeName"]
            if pod["spec"].get("hostname") and pod["spec"].get("subdomain") == svc["metadata"]["name"]:
                addr["hostname"] = pod["spec"]["hostname"]
            gk = tuple(sorted((p.get("name", ""), p["port"], p["protocol"]) for p in ports))
            g = groups.setdefault(gk, {"ports": sorted(ports, key=lambda p: (p.get("name", ""), p["port"]))})
            which = "addresses" if publish or pod_ready(pod) else "notReadyAddresses"
            g.setdefault(which, []).append(addr)
            count += 1
        out = []
        for gk in sorted(groups):
            g = groups[gk]
            for k in ("addresses", "notReadyAddresses"):
                if k in g:
                    g[k].sort(key=lambda a: a["ip"])
            if not g["ports"]:
                del g["ports"]
            out.append(g)
        return out, truncated

    async def sync(self, key: str) -> None:
        svc = self.services.get_key(key)
        ns, name = key.split("/", 1)
        cur = self.endpoints.get(ns, name)
        if svc is None:  # queued by the Service's deletion
            if cur is not None:
                try:
                    await self.api.delete(ENDPOINTS, name, ns)
                except NotFound:
                    pass
            return
        if not (svc.get("spec") or {}).get("selector"):
            return  # no selector: the Endpoints are the user's
        subsets, truncated = self.subsets(svc)
        labels = dict(svc["metadata"].get("labels") or {})
        if svc["spec"].get("clusterIP") == "None":
            labels[HEADLESS] = ""
        over = {OVER_CAPACITY: "truncated"} if truncated else {}
        cur_over = (cur or {}).get("metadata", {}).get("annotations", {}) or {}
        if cur is not None and (cur.get("subsets") or []) == subsets and \
                (cur["metadata"].get("labels") or {}) == labels and \
                cur_over.get(OVER_CAPACITY) == over.get(OVER_CAPACITY):
            return
        body = {"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": name, "namespace": ns, "labels": labels,
                             "annotations": {TRIGGER: now_rfc3339(), **over}}}
        if subsets:
            body["subsets"] = subsets
        if cur is None:
            try:
                await self.api.create(ENDPOINTS, body, ns)
            except AlreadyExists:
                raise Conflict(409, "Conflict", f"endpoints/{name} appeared meanwhile") from None
            return
        body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        ann = {k: v for k, v in (cur["metadata"].get("annotations") or {}).items() if k != OVER_CAPACITY}
        body["metadata"]["annotations"] = {**ann, TRIGGER: now_rfc3339(), **over}
        await self.api.update(ENDPOINTS, body, ns)
