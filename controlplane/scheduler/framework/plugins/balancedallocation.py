"""NodeResourcesBalancedAllocation: prefer nodes whose cpu and memory would be used in equal shares.

With the pod added, each resource's fraction requested/allocatable (at most 1); the score is
(1 - standard deviation of the fractions) * 100 — for two resources the deviation is half their
difference. It uses the pods' real requests (not the non-zero ones), and a pod that requests
nothing is not scored by it (upstream skips best-effort pods).
"""

from __future__ import annotations

from controlplane.scheduler.framework.plugin import MAX_SCORE, Plugin


class BalancedAllocation(Plugin):
    name = "NodeResourcesBalancedAllocation"
    weight = 1

    def pre_score(self, state, pod, nodes):
        return bool(pod.cpu or pod.memory)

    def score(self, state, pod, nodes):
        out = []
        append = out.append
        pc, pm = pod.cpu, pod.memory
        for ni in nodes:
            ac, am = ni.alloc_cpu, ni.alloc_memory
            fc = min(1.0, (ni.req_cpu + pc) / ac) if ac else 1.0
            fm = min(1.0, (ni.req_memory + pm) / am) if am else 1.0
            append(int((1 - abs(fc - fm) / 2) * MAX_SCORE))
        return out
