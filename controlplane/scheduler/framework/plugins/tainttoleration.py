"""TaintToleration: taints keep pods off nodes unless the pod tolerates them.

Filter: a NoSchedule or NoExecute taint the pod does not tolerate rejects the node (no eviction
can remove a taint, so preemption does not try it). Score: the fewer PreferNoSchedule taints the
pod does not tolerate, the better (only tolerations with effect PreferNoSchedule or empty count).
"""

from __future__ import annotations

from controlplane.scheduler.framework.plugin import Plugin, default_normalize
from controlplane.scheduler.framework.status import unresolvable
from controlplane.scheduler.podinfo import tolerated


class TaintToleration(Plugin):
    name = "TaintToleration"
    weight = 3
    filters = True

    def pre_filter(self, state, pod, nodes):
        return state["hints"].get("taints", True)

    def pre_score(self, state, pod, nodes):
        return state["hints"].get("taints", True)  # untainted everywhere: every node scores 100

    def filter(self, state, pod, ni):
        for taint in ni.taints:
            if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerated(pod.tolerations, taint):
                return unresolvable(self.name, "node(s) had untolerated taint "
                                               f"{{{taint.get('key', '')}: {taint.get('value', '')}}}")
        return None

    def score(self, state, pod, nodes):
        prefer = tuple(t for t in pod.tolerations if t.effect in ("", "PreferNoSchedule"))
        out = []
        for ni in nodes:
            n = 0
            for taint in ni.taints:
                if taint.get("effect") == "PreferNoSchedule" and not tolerated(prefer, taint):
                    n += 1
            out.append(n)
        return out

    def normalize(self, scores):
        return default_normalize(scores, reverse=True)
