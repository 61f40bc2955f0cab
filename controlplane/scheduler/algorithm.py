"""One scheduling attempt for one pod: filter the nodes, score the feasible ones, pick the best.

Upstream's schedulePod, step by step:

    1. No nodes at all: "no nodes available to schedule pods".
    2. A pod nominated to a node by an earlier preemption tries that node first; if it fits,
       it is taken without looking further.
    3. PreFilter once, then Filter node by node, starting where the previous cycle stopped (so
       consecutive pods do not all look at the same first nodes) and stopping once enough
       feasible nodes are found: all of them below 100 nodes, else max(100, n * p%) with
       p = max(5, 50 - n/125) — upstream's adaptive percentageOfNodesToScore. On a node with
       nominated pods of at least our priority, the filters see those pods as already there:
       the room preemption made for them is not given away.
    4. None feasible → FitError with every node's status (the FailedScheduling message).
    5. One feasible → it; otherwise score and take the highest, ties broken at random.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from controlplane.scheduler.cache import Cache
from controlplane.scheduler.framework import Framework
from controlplane.scheduler.framework.status import Status, fit_error
from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.podinfo import PodInfo

NO_NODES = "no nodes available to schedule pods"


class FitError(Exception):
    def __init__(self, num_nodes: int, statuses: dict[str, Status], prefilter_msg: str = ""):
        super().__init__(fit_error(num_nodes, statuses, prefilter_msg))
        self.num_nodes, self.statuses, self.prefilter_msg = num_nodes, statuses, prefilter_msg

    def message(self, postfilter_msg: str = "") -> str:
        if self.num_nodes == 0:
            return NO_NODES
        return fit_error(self.num_nodes, self.statuses, self.prefilter_msg, postfilter_msg)


@dataclass(frozen=True)
class Placement:
    node: str
    evaluated: int
    feasible: int


def feasible_to_find(n: int) -> int:
    if n < 100:
        return n
    pct = max(5, 50 - n // 125)
    return max(100, n * pct // 100)


CHUNK = 128  # nodes per comprehension in `fitting`: small enough to stop near `want`


def fitting(nodes: list[NodeInfo], pod: PodInfo, want: int) -> tuple[list[NodeInfo], int]:
    """The first `want` nodes (in order) with room for the pod's cpu, memory and pod count — what
    NodeResourcesFit.filter accepts for a pod without other resources — and how many nodes were
    looked at to find them (all of them if fewer fit)."""
    pc, pm = pod.cpu, pod.memory
    no_cpu, no_mem = not pc, not pm
    found: list[int] = []
    for lo in range(0, len(nodes), CHUNK):
        found += [lo + i for i, ni in enumerate(nodes[lo:lo + CHUNK])
                  if len(ni.pods) < ni.alloc_pods and (no_cpu or ni.alloc_cpu >= pc + ni.req_cpu)
                  and (no_mem or ni.alloc_memory >= pm + ni.req_memory)]
        if len(found) >= want:
            del found[want:]
            return [nodes[i] for i in found], found[-1] + 1
    return [nodes[i] for i in found], len(nodes)


class Nominator:
    """Pods that preemption made room for, by node (upstream's nominator). Owned by the loop."""

    def __init__(self) -> None:
        self.by_node: dict[str, dict[str, PodInfo]] = {}
        self.node_of: dict[str, str] = {}

    def add(self, pod: PodInfo, node: str) -> None:
        self.remove(pod.uid)
        self.by_node.setdefault(node, {})[pod.uid] = pod
        self.node_of[pod.uid] = node

    def remove(self, uid: str) -> None:
        node = self.node_of.pop(uid, None)
        if node is not None:
            pods = self.by_node.get(node, {})
            pods.pop(uid, None)
            if not pods:
                self.by_node.pop(node, None)

    def with_nominated(self, pod: PodInfo, ni: NodeInfo) -> NodeInfo:
        noms = self.by_node.get(ni.name)
        if not noms:
            return ni
        add = [p for p in noms.values() if p.uid != pod.uid and p.priority >= pod.priority
               and p.uid not in ni.pods]
        if not add:
            return ni
        c = ni.clone()
        for p in add:
            c.add_pod(p)
        return c


class Algorithm:
    def __init__(self, framework: Framework, cache: Cache, nominator: Nominator):
        self.fw, self.cache, self.nominator = framework, cache, nominator
        self.next_start = 0
        self.rng = random.Random()

    def schedule(self, pod: PodInfo) -> Placement:
        nodes = self.cache.node_list()
        n = len(nodes)
        if n == 0:
            raise FitError(0, {})
        state, active = self.fw.pre_filter(pod, nodes, self.cache.hints())
        nominator = self.nominator
        # check(node) -> Status | None; a partial (no Python frame of its own) because it runs
        # for hundreds of nodes per pod, and usually a single plugin (NodeResourcesFit) is left
        if len(active) == 1:
            check = functools.partial(active[0].filter, state, pod)
        else:
            check = functools.partial(self.fw.run_filters, state, active, pod)
        nominated = nominator.by_node
        if pod.nominated_node:
            ni = self.cache.nodes.get(pod.nominated_node)
            if ni is not None and ni.node is not None:
                if check(nominator.with_nominated(pod, ni)) is None:
                    return Placement(ni.name, 1, 1)
        want = feasible_to_find(n)
        start = self.next_start % n
        rotated = nodes[start:] + nodes[:start]
        if not nominated and len(active) == 1 and active[0].name == "NodeResourcesFit" and not pod.other_requests:
            # The common pod (resources only, nothing else to check): the nodes that fit, found
            # a chunk at a time by one comprehension each rather than a call per node; the same
            # answer and the same stopping point as the loop below. When none fits, the loop
            # below runs to collect every node's reasons for the message.
            feasible, visited = fitting(rotated, pod, want)
            if feasible:
                self.next_start = (start + visited) % n
                return self._pick(state, pod, feasible, visited)
        feasible: list[NodeInfo] = []
        statuses: dict[str, Status] = {}
        visited = 0
        for ni in rotated:
            visited += 1
            st = check(nominator.with_nominated(pod, ni) if nominated else ni)
            if st is None:
                feasible.append(ni)
                if len(feasible) >= want:
                    break
            else:
                statuses[ni.name] = st
        self.next_start = (start + visited) % n
        if not feasible:
            raise FitError(n, statuses)
        return self._pick(state, pod, feasible, visited)

    def _pick(self, state: dict, pod: PodInfo, feasible: list[NodeInfo], visited: int) -> Placement:
        if len(feasible) == 1:
            return Placement(feasible[0].name, visited, 1)
        scores = self.fw.score(state, pod, feasible)
        best = max(scores)
        chosen = self.rng.choice([i for i, s in enumerate(scores) if s == best])  # a fair pick among ties
        return Placement(feasible[chosen].name, visited, len(feasible))
