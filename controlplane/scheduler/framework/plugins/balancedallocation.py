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
        # one comprehension, without min()/abs() (`for x in [e]` is an assignment): it runs for
        # every feasible node of every pod
        pc, pm = pod.cpu, pod.memory
        return [int((1 - (fc - fm if fc > fm else fm - fc) / 2) * MAX_SCORE)
                for ni in nodes
                for fc in [(ni.req_cpu + pc) / ni.alloc_cpu if ni.alloc_cpu else 1.0]
                for fm in [(ni.req_memory + pm) / ni.alloc_memory if ni.alloc_memory else 1.0]
                for fc in [fc if fc < 1.0 else 1.0]
                for fm in [fm if fm < 1.0 else 1.0]]
