"""Preemption (upstream DefaultPreemption): make room for a pod by evicting lower-priority pods.

Runs when no node fits. In order:

    1. Eligible? Not with preemptionPolicy Never; not while lower-priority pods on the node it
       was already nominated to are still terminating (the room is being made).
    2. Candidates: nodes whose filter said UNSCHEDULABLE (resources, ports, anti-affinity).
       Nodes rejected for good (taints, selectors) are "not helpful".
    3. On a copy of each candidate, remove every pod of lower priority; if the pod still does not
       fit, the node is no candidate. Else give pods back, most important first (higher
       priority, then older), keeping each one the pod still fits beside: the rest are victims.
    4. Pick the node whose victims matter least: lowest highest-victim priority, then lowest
       sum of priorities, then fewest victims.

The caller (scheduler.py) then sets status.nominatedNodeName on the pod and deletes the victims
gracefully; the pod is retried once they are gone. PodDisruptionBudgets are not consulted.
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.scheduler.cache import Cache
from controlplane.scheduler.framework import Framework
from controlplane.scheduler.framework.status import UNSCHEDULABLE, Status, fit_error, unresolvable
from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.podinfo import PodInfo

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
MAX_CANDIDATES = 100  # upstream's minCandidateNodesAbsolute


@dataclass(frozen=True)
class Candidate:
    node: str
    victims: tuple[PodInfo, ...]


def _more_important(p: PodInfo):
    return (-p.priority, p.start_time)


def _fits(fw: Framework, pod: PodInfo, nodes: list[NodeInfo], i: int, ni: NodeInfo) -> Status | None:
    view = nodes[:i] + [ni] + nodes[i + 1:]
    state, active = fw.pre_filter(pod, view)
    return fw.run_filters(state, active, pod, ni)


def select_victims(fw: Framework, pod: PodInfo, nodes: list[NodeInfo], i: int) -> tuple[list[PodInfo], Status | None]:
    ni = nodes[i].clone()
    lower = sorted((p for p in ni.pods.values() if p.priority < pod.priority), key=_more_important)
    if not lower:
        return [], unresolvable("DefaultPreemption", NO_VICTIMS)
    for p in lower:
        ni.remove_pod(p)
    st = _fits(fw, pod, nodes, i, ni)
    if st is not None:
        return [], st
    victims = []
    for p in lower:
        ni.add_pod(p)
        if _fits(fw, pod, nodes, i, ni) is not None:
            ni.remove_pod(p)
            victims.append(p)
    return victims, None


def preempt(fw: Framework, cache: Cache, pod: PodInfo, statuses: dict[str, Status]) -> tuple[Candidate | None, str]:
    """(the chosen candidate, or None and the message; the message is "" on success)."""
    if pod.preempt_never:
        return None, "not eligible due to preemptionPolicy=Never."
    if pod.nominated_node:
        ni = cache.nodes.get(pod.nominated_node)
        if ni is not None and any(p.deleting and p.priority < pod.priority for p in ni.pods.values()):
            return None, "not eligible due to a terminating pod on the nominated node."
    nodes = cache.node_list()
    result: dict[str, Status] = {}
    candidates: list[Candidate] = []
    for i, ni in enumerate(nodes):
        st = statuses.get(ni.name)
        if st is None or st.code != UNSCHEDULABLE:
            result[ni.name] = unresolvable("DefaultPreemption", NOT_HELPFUL)
            continue
        if len(candidates) >= MAX_CANDIDATES:
            continue
        victims, st = select_victims(fw, pod, nodes, i)
        if st is not None:
            result[ni.name] = st
        else:
            candidates.append(Candidate(ni.name, tuple(victims)))
    if not candidates:
        return None, fit_error(len(nodes), result)

    def cost(c: Candidate):
        top = max((v.priority for v in c.victims), default=-(2**31))
        return (top, sum(v.priority + 2**31 for v in c.victims), len(c.victims))

    return min(candidates, key=cost), ""
