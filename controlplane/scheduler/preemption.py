"""Preemption (upstream DefaultPreemption): make room for a pod by evicting lower-priority pods.

Runs when no node fits. In order:

    1. Eligible? Not with preemptionPolicy Never; not while lower-priority pods on the node it
       was already nominated to are still terminating (the room is being made).
    2. Candidates: nodes whose filter said UNSCHEDULABLE (resources, ports, anti-affinity).
       Nodes rejected for good (taints, selectors) are "not helpful".
    3. On a copy of each candidate, remove every pod of lower priority; if the pod still does not
       fit, the node is no candidate. Else give pods back, keeping each one the pod still fits
       beside: first those whose eviction would break a PodDisruptionBudget, then the others,
       each group most important first (higher priority, then older). The rest are victims; the
       victims that break a budget are counted.
    4. Pick the node whose victims matter least: fewest budgets broken, then lowest
       highest-victim priority, then lowest sum of priorities, then fewest victims.

Budgets are respected on a best-effort basis, as upstream: a node where evicting breaks none is
preferred, but when every candidate breaks one, the pod preempts anyway. Whether evicting a pod
breaks its budget is read from the budget's status.disruptionsAllowed (what the disruption
controller computed), spent pod by pod along the victims of one node; a pod already listed in
status.disruptedPods has been counted by the API server's eviction and spends nothing.

The caller (scheduler.py) then sets status.nominatedNodeName on the pod and deletes the victims
gracefully; the pod is retried once they are gone.
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.scheduler.cache import Cache
from controlplane.scheduler.errors import SchedulerError
from controlplane.scheduler.framework import Framework
from controlplane.scheduler.framework.status import UNSCHEDULABLE, Status, fit_error, unresolvable
from controlplane.scheduler.labels import LabelSelector, label_selector
from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.podinfo import PodInfo

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
MAX_CANDIDATES = 100  # upstream's minCandidateNodesAbsolute


@dataclass(frozen=True)
class Candidate:
    node: str
    victims: tuple[PodInfo, ...]
    pdb_violations: int = 0


@dataclass(frozen=True)
class Budget:
    """One PodDisruptionBudget as preemption reads it."""

    namespace: str
    selector: LabelSelector
    allowed: int  # status.disruptionsAllowed
    disrupted: frozenset[str]  # status.disruptedPods: names the API server already counted


def budget(pdb: dict) -> Budget:
    """A policy/v1 PodDisruptionBudget dict → Budget. A missing or empty selector selects
    nothing (upstream: "A PDB with a nil or empty selector matches nothing"); an unreadable
    one too (someone else's object: nothing to report on a pod)."""
    md, spec, st = pdb.get("metadata") or {}, pdb.get("spec") or {}, pdb.get("status") or {}
    sel = spec.get("selector")
    try:
        compiled = label_selector(sel, "spec.selector") if sel and (
            sel.get("matchLabels") or sel.get("matchExpressions")) else LabelSelector(nothing=True)
    except SchedulerError:  # a selector the API server let through but we cannot read
        compiled = LabelSelector(nothing=True)
    return Budget(md.get("namespace") or "default", compiled, int(st.get("disruptionsAllowed") or 0),
                  frozenset(st.get("disruptedPods") or ()))


def split_by_budget(pods: list[PodInfo], budgets: list[Budget]) -> tuple[list[PodInfo], list[PodInfo]]:
    """(violating, not violating), each in the given order (upstream filterPodsWithPDBViolation):
    every matching budget's allowance is spent by each pod in turn; a pod that takes one below
    zero violates it."""
    allowed = [b.allowed for b in budgets]
    violating, fine = [], []
    for p in pods:
        broken = False
        if p.labels:
            for i, b in enumerate(budgets):
                if b.namespace != p.namespace or not b.selector.matches(p.labels) or p.name in b.disrupted:
                    continue
                allowed[i] -= 1
                if allowed[i] < 0:
                    broken = True
        (violating if broken else fine).append(p)
    return violating, fine


def _more_important(p: PodInfo):
    return (-p.priority, p.start_time)


def _fits(fw: Framework, pod: PodInfo, nodes: list[NodeInfo], i: int, ni: NodeInfo) -> Status | None:
    view = nodes[:i] + [ni] + nodes[i + 1:]
    state, active = fw.pre_filter(pod, view)
    return fw.run_filters(state, active, pod, ni)


def select_victims(fw: Framework, pod: PodInfo, nodes: list[NodeInfo], i: int,
                   budgets: list[Budget] = ()) -> tuple[list[PodInfo], int, Status | None]:
    """(victims, how many of them break a budget, None) or ([], 0, why this node cannot help)."""
    ni = nodes[i].clone()
    lower = sorted((p for p in ni.pods.values() if p.priority < pod.priority), key=_more_important)
    if not lower:
        return [], 0, unresolvable("DefaultPreemption", NO_VICTIMS)
    for p in lower:
        ni.remove_pod(p)
    st = _fits(fw, pod, nodes, i, ni)
    if st is not None:
        return [], 0, st
    victims, violations = [], 0
    violating, fine = split_by_budget(lower, list(budgets))
    for group, breaks in ((violating, 1), (fine, 0)):
        for p in group:
            ni.add_pod(p)
            if _fits(fw, pod, nodes, i, ni) is not None:
                ni.remove_pod(p)
                victims.append(p)
                violations += breaks
    return victims, violations, None


def preempt(fw: Framework, cache: Cache, pod: PodInfo, statuses: dict[str, Status],
            budgets: list[Budget] = ()) -> tuple[Candidate | None, str]:
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
        victims, violations, st = select_victims(fw, pod, nodes, i, budgets)
        if st is not None:
            result[ni.name] = st
        else:
            candidates.append(Candidate(ni.name, tuple(victims), violations))
    if not candidates:
        return None, fit_error(len(nodes), result)

    def cost(c: Candidate):
        top = max((v.priority for v in c.victims), default=-(2**31))
        return (c.pdb_violations, top, sum(v.priority + 2**31 for v in c.victims), len(c.victims))

    return min(candidates, key=cost), ""
