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
        # spelled out without min()/abs(): it runs for every feasible node of every pod
        out = []
        append = out.append
        pc, pm = pod.cpu, pod.memory
        for ni in nodes:
            ac, am = ni.alloc_cpu, ni.alloc_memory
            fc = (ni.req_cpu + pc) / ac if ac else 1.0
            fm = (ni.req_memory + pm) / am if am else 1.0
            if fc > 1.0:
                fc = 1.0
            if fm > 1.0:
                fm = 1.0
            d = fc - fm if fc > fm else fm - fc
            append(int((1 - d / 2) * MAX_SCORE))
        return out
