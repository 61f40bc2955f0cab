"""NodePorts: two pods cannot bind the same hostPort (protocol, port) on one node address;
0.0.0.0 takes the port on every address."""

from __future__ import annotations

from controlplane.scheduler.framework.plugin import NODE_ADD, NODE_CHANGE, POD_GONE, Plugin
from controlplane.scheduler.framework.status import unschedulable

REASON = "node(s) didn't have free ports for the requested pod ports"


class NodePorts(Plugin):
    name = "NodePorts"
    filters = True
    events = frozenset({NODE_ADD, NODE_CHANGE, POD_GONE})

    def pre_filter(self, state, pod, nodes):
        return bool(pod.host_ports)

    def filter(self, state, pod, ni):
        for ip, proto, port in pod.host_ports:
            if ni.port_conflict(ip, proto, port):
                return unschedulable(self.name, REASON)
        return None
