"""NodeInfo: one node and what the pods on it (bound or assumed) use.

The aggregate every filter and score reads: the node's allocatable resources, labels and taints,
and the running totals of the pods placed on it — requested resources, "non-zero" requests for
scoring, host ports in use, and which of its pods carry (anti-)affinity terms. Totals are kept
up to date on add/remove so a filter is a few integer comparisons, never a walk over the pods.

Owned by the cache (cache.py); the scheduling cycle reads it and, for preemption and nominated
pods, works on a `clone()`.
"""

from __future__ import annotations

from controlplane.scheduler import quantity
from controlplane.scheduler.podinfo import PodInfo, normalize_image


class NodeInfo:
    __slots__ = ("name", "node", "labels", "taints", "unschedulable", "allocatable", "alloc_cpu",
                 "alloc_memory", "alloc_pods", "images", "pods", "requested", "req_cpu", "req_memory",
                 "nonzero_cpu", "nonzero_memory", "ports", "with_affinity", "with_anti_affinity")

    def __init__(self, name: str):
        self.name = name
        self.node: dict | None = None  # None: pods point at a node the informer has not shown yet
        self.labels: dict = {}
        self.taints: tuple[dict, ...] = ()
        self.unschedulable = False
        self.allocatable: dict[str, int] = {}
        self.alloc_cpu = self.alloc_memory = self.alloc_pods = 0
        self.images: dict[str, int] = {}  # normalized image name → size in bytes
        self.pods: dict[str, PodInfo] = {}  # uid → pod
        self.requested: dict[str, int] = {}
        self.req_cpu = self.req_memory = self.nonzero_cpu = self.nonzero_memory = 0
        self.ports: dict[tuple[str, int], list[str]] = {}  # (protocol, port) → host IPs in use
        self.with_affinity = 0  # pods here with any pod (anti-)affinity term
        self.with_anti_affinity: list[PodInfo] = []  # pods here with required anti-affinity

    def set_node(self, node: dict) -> None:
        self.node = node
        md, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
        self.labels = md.get("labels") or {}
        self.taints = tuple(spec.get("taints") or ())
        self.unschedulable = bool(spec.get("unschedulable"))
        alloc = status.get("allocatable") or status.get("capacity") or {}
        self.allocatable = quantity.resource_list(
            alloc, "status.allocatable" if status.get("allocatable") else "status.capacity")
        self.alloc_cpu = self.allocatable.get("cpu", 0)
        self.alloc_memory = self.allocatable.get("memory", 0)
        self.alloc_pods = self.allocatable.get("pods", 0)
        images: dict[str, int] = {}
        for img in status.get("images") or ():
            for n in img.get("names") or ():
                images[normalize_image(n)] = int(img.get("sizeBytes") or 0)
        self.images = images

    def add_pod(self, p: PodInfo) -> None:
        self.pods[p.uid] = p
        self._account(p, 1)

    def remove_pod(self, p: PodInfo) -> None:
        if self.pods.pop(p.uid, None) is not None:
            self._account(p, -1)

    def _account(self, p: PodInfo, sign: int) -> None:
        for k, v in p.requests.items():
            self.requested[k] = self.requested.get(k, 0) + sign * v
        self.req_cpu += sign * p.cpu
        self.req_memory += sign * p.memory
        self.nonzero_cpu += sign * p.nonzero_cpu
        self.nonzero_memory += sign * p.nonzero_memory
        for ip, proto, port in p.host_ports:
            ips = self.ports.setdefault((proto, port), [])
            if sign > 0:
                ips.append(ip)
            else:
                ips.remove(ip)
                if not ips:
                    del self.ports[(proto, port)]
        if p.affinity or p.anti_affinity or p.preferred_affinity or p.preferred_anti_affinity:
            self.with_affinity += sign
        if p.anti_affinity:
            if sign > 0:
                self.with_anti_affinity.append(p)
            else:
                self.with_anti_affinity = [q for q in self.with_anti_affinity if q.uid != p.uid]

    def port_conflict(self, ip: str, proto: str, port: int) -> bool:
        """upstream HostPortInfo.CheckConflict: 0.0.0.0 conflicts with every address."""
        used = self.ports.get((proto, port))
        if not used:
            return False
        if ip == "0.0.0.0":
            return True
        return ip in used or "0.0.0.0" in used

    def clone(self) -> NodeInfo:
        c = NodeInfo(self.name)
        c.node, c.labels, c.taints, c.unschedulable = self.node, self.labels, self.taints, self.unschedulable
        c.allocatable, c.alloc_cpu, c.alloc_memory, c.alloc_pods = (
            self.allocatable, self.alloc_cpu, self.alloc_memory, self.alloc_pods)
        c.images = self.images
        c.pods = dict(self.pods)
        c.requested = dict(self.requested)
        c.req_cpu, c.req_memory = self.req_cpu, self.req_memory
        c.nonzero_cpu, c.nonzero_memory = self.nonzero_cpu, self.nonzero_memory
        c.ports = {k: list(v) for k, v in self.ports.items()}
        c.with_affinity = self.with_affinity
        c.with_anti_affinity = list(self.with_anti_affinity)
        return c
