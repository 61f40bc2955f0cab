"""PodTopologySpread: keep matching pods evenly spread over topology domains (nodes, zones).

For a constraint (topologyKey, maxSkew, labelSelector), the domains are the values of the key on
the eligible nodes — those with every required topology key and, by default
(nodeAffinityPolicy Honor), matching the pod's node selector and required node affinity; with
nodeTaintsPolicy Honor also only nodes whose taints the pod tolerates. Each domain counts the
pods matching the selector in the pod's namespace (pods being deleted do not count).

Filter (whenUnsatisfiable DoNotSchedule): placing the pod in domain D must keep
    count(D) + 1 - min(count over domains) <= maxSkew
where min is 0 while there are fewer domains than minDomains. A node without the key is
rejected outright ("missing required label": no eviction adds a label).

Score (ScheduleAnyway): for each node, per constraint count(D) * log(domains + 2) + maxSkew - 1;
lower is better, scaled as upstream's NormalizeScore: 100 * (max + min - s) / max. A node without
a constraint's key gets 0.

A pod with no constraints of its own gets upstream's system defaults when a controller owns it:
spread softly by hostname (maxSkew 3) and by zone (maxSkew 5), among the pods of the same
controller. Upstream takes the selector from the owning ReplicaSet/StatefulSet/RC and from the
Services that select the pod; we count the pods with the same controller ownerReference, which
is what that selector selects as long as controllers do not overlap. With system defaults a node
lacking one of the keys is still scored by the other.
"""

from __future__ import annotations

import math
from collections import defaultdict

from controlplane.scheduler.framework.plugin import ALL_EVENTS, MAX_SCORE, Plugin
from controlplane.scheduler.framework.plugins.nodeaffinity import node_matches
from controlplane.scheduler.framework.status import unresolvable, unschedulable
from controlplane.scheduler.labels import LabelSelector
from controlplane.scheduler.podinfo import HOSTNAME, ZONE, SpreadConstraint, tolerated

SKEW = "node(s) didn't match pod topology spread constraints"
MISSING = "node(s) didn't match pod topology spread constraints (missing required label)"


def _eligible(pod, c, ni, keys) -> bool:
    for k in keys:
        if k not in ni.labels:
            return False
    if c.honor_affinity and not node_matches(pod, ni):
        return False
    if c.honor_taints:
        for taint in ni.taints:
            if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerated(pod.tolerations, taint):
                return False
    return True


def _count(pod, c, ni) -> int:
    n = 0
    for other in ni.pods.values():
        if other.namespace == pod.namespace and not other.deleting and c.matches(other):
            n += 1
    return n


def _domain_counts(pod, constraints, nodes, all_keys: bool = True) -> list[dict[str, int]]:
    """Matching pods per domain, for each constraint; all_keys: a node counts only if it has
    every constraint's key (a pod's own constraints), else only its own (system defaults)."""
    keys = [c.topology_key for c in constraints]
    out = []
    for c in constraints:
        counts: dict[str, int] = defaultdict(int)
        for ni in nodes:
            if _eligible(pod, c, ni, keys if all_keys else [c.topology_key]):
                counts[ni.labels[c.topology_key]] += _count(pod, c, ni)
        out.append(counts)
    return out


class PodTopologySpread(Plugin):
    name = "PodTopologySpread"
    weight = 2
    filters = True
    needs_pods = True
    events = ALL_EVENTS

    def pre_filter(self, state, pod, nodes):
        hard = [c for c in pod.spread if c.hard]
        if not hard:
            return False
        state[self.name] = (hard, _domain_counts(pod, hard, nodes))
        return True

    def filter(self, state, pod, ni):
        hard, counts = state[self.name]
        for c, domains in zip(hard, counts):
            value = ni.labels.get(c.topology_key)
            if value is None:
                return unresolvable(self.name, MISSING)
            low = min(domains.values(), default=0) if len(domains) >= c.min_domains else 0
            self_match = 1 if c.matches(pod) else 0
            if domains.get(value, 0) + self_match - low > c.max_skew:
                return unschedulable(self.name, SKEW)
        return None

    def pre_score(self, state, pod, nodes):
        soft = [c for c in pod.spread if not c.hard]
        system = not pod.spread and bool(pod.owner)
        if system:
            soft = [SpreadConstraint(3, HOSTNAME, False, LabelSelector(), 1, True, False, pod.owner),
                    SpreadConstraint(5, ZONE, False, LabelSelector(), 1, True, False, pod.owner)]
        if not soft:
            return False
        all_nodes = state.get("all_nodes") or nodes
        state[self.name + "/score"] = (soft, _domain_counts(pod, soft, all_nodes, not system), system)
        return True

    def score(self, state, pod, nodes):
        soft, counts, system = state[self.name + "/score"]
        out = []
        for ni in nodes:
            s = 0.0
            for c, domains in zip(soft, counts):
                value = ni.labels.get(c.topology_key)
                if value is None:
                    if system:
                        continue
                    s = -1.0  # ignored node: scored 0 after normalizing
                    break
                s += domains.get(value, 0) * math.log(len(domains) + 2) + c.max_skew - 1
            out.append(round(s) if s >= 0 else -1)
        return out

    def normalize(self, scores):
        valid = [s for s in scores if s >= 0]
        lo, hi = min(valid, default=0), max(valid, default=0)
        out = []
        for s in scores:
            if s < 0:
                out.append(0)
            elif hi == 0:
                out.append(MAX_SCORE)
            else:
                out.append(MAX_SCORE * (hi + lo - s) // hi)
        return out
