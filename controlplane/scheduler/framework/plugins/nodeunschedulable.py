"""NodeUnschedulable: a cordoned node (spec.unschedulable, `kubectl cordon`) takes only pods that
tolerate the node.kubernetes.io/unschedulable:NoSchedule taint (DaemonSet pods do)."""

from __future__ import annotations

from controlplane.scheduler.framework.plugin import Plugin
from controlplane.scheduler.framework.status import unresolvable
from controlplane.scheduler.podinfo import tolerated

REASON = "node(s) were unschedulable"
TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


class NodeUnschedulable(Plugin):
    name = "NodeUnschedulable"
    filters = True

    def pre_filter(self, state, pod, nodes):
        return state["hints"].get("unschedulable", True)

    def filter(self, state, pod, ni):
        if ni.unschedulable and not tolerated(pod.tolerations, TAINT):
            return unresolvable(self.name, REASON)
        return None
