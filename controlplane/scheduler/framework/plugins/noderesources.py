"""NodeResourcesFit: the pod's requests must fit in what the node's pods have not requested.

Filter (upstream fitsRequest): the pod count against allocatable "pods" ("Too many pods"), then
cpu, memory and every other requested resource against allocatable minus the requests already
on the node ("Insufficient cpu"). Only requests count, never limits or actual usage; a pod that
requests nothing is checked for the pod count alone.

Score, strategy LeastAllocated (the default): per resource, the share left free once the pod is
added, (allocatable - requested) * 100 / allocatable, averaged over cpu and memory with weight 1
each. It uses the "non-zero" requests (podinfo.py), so pods without requests spread too.
"""

from __future__ import annotations

from controlplane.scheduler.framework.plugin import NODE_ADD, NODE_CHANGE, POD_GONE, MAX_SCORE, Plugin
from controlplane.scheduler.framework.status import Status, unschedulable


def insufficient(pod, ni) -> list[str]:
    reasons = []
    if len(ni.pods) + 1 > ni.alloc_pods:
        reasons.append("Too many pods")
    if pod.cpu and ni.alloc_cpu < pod.cpu + ni.req_cpu:
        reasons.append("Insufficient cpu")
    if pod.memory and ni.alloc_memory < pod.memory + ni.req_memory:
        reasons.append("Insufficient memory")
    for k, v in pod.other_requests:
        if ni.allocatable.get(k, 0) < v + ni.requested.get(k, 0):
            reasons.append(f"Insufficient {k}")
    return reasons


class NodeResourcesFit(Plugin):
    name = "NodeResourcesFit"
    weight = 1
    filters = True
    events = frozenset({NODE_ADD, NODE_CHANGE, POD_GONE})

    def filter(self, state, pod, ni) -> Status | None:
        # The common case in two comparisons; the full check only when something is short.
        if (len(ni.pods) < ni.alloc_pods and ni.alloc_cpu >= pod.cpu + ni.req_cpu
                and ni.alloc_memory >= pod.memory + ni.req_memory and not pod.other_requests):
            return None
        reasons = insufficient(pod, ni)
        return unschedulable(self.name, *reasons) if reasons else None

    def score(self, state, pod, nodes):
        # (cpu score + memory score) // 2, each (allocatable - requested) * 100 // allocatable;
        # one comprehension because it runs for every feasible node of every pod
        pc, pm = pod.nonzero_cpu, pod.nonzero_memory
        return [((ni.alloc_cpu - ni.nonzero_cpu - pc) * MAX_SCORE // ni.alloc_cpu
                 if ni.alloc_cpu and ni.nonzero_cpu + pc <= ni.alloc_cpu else 0)
                + ((ni.alloc_memory - ni.nonzero_memory - pm) * MAX_SCORE // ni.alloc_memory
                   if ni.alloc_memory and ni.nonzero_memory + pm <= ni.alloc_memory else 0) >> 1
                for ni in nodes]
