"""Framework: the default plugin set and how one cycle runs it (upstream frameworkruntime).

Filter order (upstream's default profile): NodeUnschedulable, NodeName, TaintToleration,
NodeAffinity, NodePorts, NodeResourcesFit, PodTopologySpread, InterPodAffinity. Score weights
(upstream's defaults): TaintToleration 3, NodeAffinity 2, PodTopologySpread 2, InterPodAffinity 2,
NodeResourcesFit 1, NodeResourcesBalancedAllocation 1, ImageLocality 1. A node's total is the
sum of each plugin's normalized 0..100 score times its weight.
"""

from __future__ import annotations

from controlplane.scheduler.framework.plugin import Plugin
from controlplane.scheduler.framework.plugins.balancedallocation import BalancedAllocation
from controlplane.scheduler.framework.plugins.imagelocality import ImageLocality
from controlplane.scheduler.framework.plugins.interpodaffinity import InterPodAffinity
from controlplane.scheduler.framework.plugins.nodeaffinity import NodeAffinity
from controlplane.scheduler.framework.plugins.nodename import NodeName
from controlplane.scheduler.framework.plugins.nodeports import NodePorts
from controlplane.scheduler.framework.plugins.noderesources import NodeResourcesFit
from controlplane.scheduler.framework.plugins.nodeunschedulable import NodeUnschedulable
from controlplane.scheduler.framework.plugins.podtopologyspread import PodTopologySpread
from controlplane.scheduler.framework.plugins.tainttoleration import TaintToleration
from controlplane.scheduler.framework.status import Status
from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.podinfo import PodInfo


def default_plugins(cache) -> list[Plugin]:
    return [NodeUnschedulable(), NodeName(), TaintToleration(), NodeAffinity(), NodePorts(),
            NodeResourcesFit(), PodTopologySpread(), InterPodAffinity(), BalancedAllocation(),
            ImageLocality(cache)]


class Framework:
    def __init__(self, plugins: list[Plugin]):
        self.plugins = plugins
        self.filter_plugins = [p for p in plugins if p.filters]
        self.score_plugins = [p for p in plugins if p.weight]
        self.by_name = {p.name: p for p in plugins}

    def pre_filter(self, pod: PodInfo, nodes: list[NodeInfo], hints: dict | None = None) -> tuple[dict, list[Plugin]]:
        """A fresh cycle state and the filters that apply to this pod. `hints` (Cache.hints) say
        what no node has at all (no taints, no cordoned node, no pod with affinity terms), so
        plugins can skip without looking at every node; without hints they assume the worst."""
        state: dict = {"all_nodes": nodes, "hints": hints or {}}
        active = [p for p in self.filter_plugins if p.pre_filter(state, pod, nodes)]
        return state, active

    def refresh(self, state: dict, active: list[Plugin], pod: PodInfo, nodes: list[NodeInfo]) -> None:
        """Recompute the pod-dependent pre-filter state after nodes changed (preemption)."""
        for p in active:
            if p.needs_pods:
                p.pre_filter(state, pod, nodes)

    @staticmethod
    def run_filters(state: dict, active: list[Plugin], pod: PodInfo, ni: NodeInfo) -> Status | None:
        for p in active:
            st = p.filter(state, pod, ni)
            if st is not None:
                return st
        return None

    def score(self, state: dict, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        total = [0] * len(nodes)
        for p in self.score_plugins:
            if not p.pre_score(state, pod, nodes):
                continue
            scores = p.normalize(p.score(state, pod, nodes))
            w = p.weight
            total = [t + s * w for t, s in zip(total, scores)]
        return total
