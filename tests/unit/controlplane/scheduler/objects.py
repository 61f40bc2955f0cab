"""Plain-dict Nodes and Pods for the scheduler's unit tests, and a scheduler built on them."""

from __future__ import annotations

from controlplane.scheduler.algorithm import Algorithm, Nominator
from controlplane.scheduler.cache import Cache
from controlplane.scheduler.framework import Framework
from controlplane.scheduler.framework.runtime import default_plugins
from controlplane.scheduler.podinfo import pod_info


def node(name, cpu="4", memory="8Gi", pods=110, labels=None, taints=None, unschedulable=False, images=None):
    labels = {"kubernetes.io/hostname": name, **(labels or {})}
    alloc = {"cpu": cpu, "memory": memory, "pods": str(pods)}
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"allocatable": alloc, "capacity": alloc, "images": images or []}}


_uid = [0]


def pod(name, cpu=None, memory=None, ns="default", labels=None, node_name="", priority=0, metadata_owner=None,
        **spec):
    _uid[0] += 1
    req = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    containers = spec.pop("containers", None) or [{"name": "c", "image": spec.pop("image", "busybox"),
                                                   "resources": {"requests": req} if req else {},
                                                   "ports": spec.pop("ports", [])}]
    s = {"containers": containers, "priority": priority, "schedulerName": "default-scheduler", **spec}
    if node_name:
        s["nodeName"] = node_name
    return {"metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}-{_uid[0]}",
                         "labels": labels or {}, "creationTimestamp": f"2026-01-01T00:00:{_uid[0] % 60:02d}Z",
                         "ownerReferences": metadata_owner or []},
            "spec": s, "status": {"phase": "Running" if node_name else "Pending"}}


class Sched:
    """A cache + framework + algorithm, no API: place(pod) returns the node or raises FitError."""

    def __init__(self, nodes=(), pods=()):
        self.cache = Cache()
        self.framework = Framework(default_plugins(self.cache))
        self.nominator = Nominator()
        self.algorithm = Algorithm(self.framework, self.cache, self.nominator)
        for n in nodes:
            self.cache.set_node(n)
        for p in pods:
            self.cache.set_pod(pod_info(p))

    def place(self, p: dict, assume: bool = True) -> str:
        pi = pod_info(p)
        node = self.algorithm.schedule(pi).node
        if assume:
            self.cache.assume(pi, node)
        return node
