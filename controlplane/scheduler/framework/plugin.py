"""The plugin contract: the extension points a scheduling cycle calls, in this order.

    pre_filter(state, pod, nodes) -> bool    once per cycle, with every node: compute what the
                                             filter needs (counts per topology domain, ...) into
                                             `state`; False means "nothing to check for this pod",
                                             and the filter is skipped on every node (upstream's
                                             PreFilter returning Skip)
    filter(state, pod, node) -> Status|None  per node: None if the pod fits
    pre_score(state, pod, nodes) -> bool     once, with the feasible nodes; False: score skipped
    score(state, pod, nodes) -> list[int]    the raw scores of all feasible nodes at once (one
                                             call per plugin rather than per node: the cycle's
                                             cost is dominated by Python calls)
    normalize(scores) -> list[int]           to 0..100 (MAX_SCORE), as the plugin's upstream does

`state` is a dict that lives for one cycle (upstream CycleState); plugins key it by their name.
`state["hints"]` says what the whole cluster has none of (no tainted node, no pod with affinity
terms...): a plugin whose work would then give every node the same verdict, or the same score,
skips itself — a constant added to every node's score does not change which node wins.
A plugin that needs other pods (affinity, spread) sets `needs_pods`, so preemption runs its
pre_filter again after taking victims off a node. `events` names the cluster events after which a
pod this plugin rejected may fit (see queue.py).
"""

from __future__ import annotations

from controlplane.scheduler.framework.status import Status
from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.podinfo import PodInfo

MAX_SCORE = 100

# Cluster events (queue.py moves pods rejected by a plugin when one of its events happens).
NODE_ADD = "NodeAdd"
NODE_CHANGE = "NodeChange"  # labels, taints, allocatable, unschedulable, images
POD_GONE = "AssignedPodGone"  # a bound pod deleted or terminated: resources and ports freed
POD_CHANGE = "AssignedPodChange"  # a bound pod added or relabelled: affinity and spread change
ALL_EVENTS = frozenset({NODE_ADD, NODE_CHANGE, POD_GONE, POD_CHANGE})


class Plugin:
    name = ""
    weight = 0  # score weight (upstream's default plugin config); 0: not a score plugin
    filters = False
    needs_pods = False
    events: frozenset[str] = frozenset({NODE_ADD, NODE_CHANGE})

    def pre_filter(self, state: dict, pod: PodInfo, nodes: list[NodeInfo]) -> bool:
        return True

    def filter(self, state: dict, pod: PodInfo, ni: NodeInfo) -> Status | None:
        return None

    def pre_score(self, state: dict, pod: PodInfo, nodes: list[NodeInfo]) -> bool:
        return True

    def score(self, state: dict, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        return [0] * len(nodes)

    def normalize(self, scores: list[int]) -> list[int]:
        return scores


def default_normalize(scores: list[int], reverse: bool = False) -> list[int]:
    """upstream helper.DefaultNormalizeScore: scale so the best is 100 (reversed: the fewest)."""
    top = max(scores, default=0)
    if top == 0:
        return [MAX_SCORE] * len(scores) if reverse else [0] * len(scores)
    out = [MAX_SCORE * s // top for s in scores]
    return [MAX_SCORE - s for s in out] if reverse else out
