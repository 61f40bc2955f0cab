"""NodeName: a pod that names its node (spec.nodeName) fits only there."""

from __future__ import annotations

from controlplane.scheduler.framework.plugin import Plugin
from controlplane.scheduler.framework.status import unresolvable

REASON = "node(s) didn't match the requested node name"


class NodeName(Plugin):
    name = "NodeName"
    filters = True

    def pre_filter(self, state, pod, nodes):
        return bool(pod.node_name)

    def filter(self, state, pod, ni):
        if pod.node_name != ni.name:
            return unresolvable(self.name, REASON)
        return None
