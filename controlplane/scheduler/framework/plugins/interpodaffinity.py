"""InterPodAffinity: place a pod near (affinity) or away from (anti-affinity) other pods.

A term names pods (a label selector over some namespaces) and a topology key: "the node's value
of that key must be shared with / differ from every node running such a pod". With the key
kubernetes.io/hostname that means the same node; with topology.kubernetes.io/zone the same zone.

PreFilter counts, once per cycle and over every node, pods per topology pair (key, value):

    existing_anti   pairs where a pod already placed has a required anti-affinity term that
                    matches the incoming pod (anti-affinity is symmetric: it keeps us out too)
    affinity        pairs holding pods that match all of the incoming pod's required terms
    anti            pairs holding pods that match one of its required anti-affinity terms

Filter then only looks the node's own pairs up. The first pod of a group that wants to be near
its own kind would wait for ever, so a pod matching its own affinity terms may go anywhere while
no such pod exists yet (upstream does the same).

Score: preferred terms of the incoming pod (+weight near matching pods, -weight for anti), and
the existing pods' terms that match the incoming pod (their preferred terms and, with weight 1,
their required affinity terms), summed per topology pair; min-max scaled to 0..100.
"""

from __future__ import annotations

from collections import defaultdict

from controlplane.scheduler.framework.plugin import ALL_EVENTS, MAX_SCORE, Plugin
from controlplane.scheduler.framework.status import unresolvable, unschedulable

EXISTING_ANTI = "node(s) didn't satisfy existing pods anti-affinity rules"
AFFINITY = "node(s) didn't match pod affinity rules"
ANTI = "node(s) didn't match pod anti-affinity rules"
HARD_POD_AFFINITY_WEIGHT = 1


def _matches_all(terms, pod) -> bool:
    for t in terms:
        if not t.matches(pod):
            return False
    return True


class InterPodAffinity(Plugin):
    name = "InterPodAffinity"
    weight = 2
    filters = True
    needs_pods = True
    events = ALL_EVENTS

    def pre_filter(self, state, pod, nodes):
        if not pod.affinity and not pod.anti_affinity and (
                not state["hints"].get("anti_affinity_pods", True)
                or not any(ni.with_anti_affinity for ni in nodes)):
            return False
        existing_anti: dict[tuple, int] = defaultdict(int)
        affinity: dict[tuple, int] = defaultdict(int)
        anti: dict[tuple, int] = defaultdict(int)
        for ni in nodes:
            labels = ni.labels
            for other in ni.with_anti_affinity:
                for t in other.anti_affinity:
                    # a term without namespaces means the namespace of the pod that holds it
                    if t.topology_key in labels and t.matches(pod):
                        existing_anti[(t.topology_key, labels[t.topology_key])] += 1
            if not pod.affinity and not pod.anti_affinity:
                continue
            for other in ni.pods.values():
                if other.uid == pod.uid:
                    continue
                if pod.affinity and _matches_all(pod.affinity, other):
                    for t in pod.affinity:
                        if t.topology_key in labels:
                            affinity[(t.topology_key, labels[t.topology_key])] += 1
                for t in pod.anti_affinity:
                    if t.topology_key in labels and t.matches(other):
                        anti[(t.topology_key, labels[t.topology_key])] += 1
        state[self.name] = (existing_anti, affinity, anti)
        return True

    def filter(self, state, pod, ni):
        existing_anti, affinity, anti = state[self.name]
        labels = ni.labels
        if existing_anti:
            for pair in labels.items():
                if existing_anti.get(pair):
                    return unschedulable(self.name, EXISTING_ANTI)
        if pod.affinity:
            exist = True
            for t in pod.affinity:
                if t.topology_key not in labels:
                    return unresolvable(self.name, AFFINITY)
                if affinity.get((t.topology_key, labels[t.topology_key]), 0) <= 0:
                    exist = False
            if not exist and not (not affinity and _matches_all(pod.affinity, pod)):
                return unresolvable(self.name, AFFINITY)
        for t in pod.anti_affinity:
            if t.topology_key in labels and anti.get((t.topology_key, labels[t.topology_key])):
                return unschedulable(self.name, ANTI)
        return None

    def pre_score(self, state, pod, nodes):
        has_terms = pod.preferred_affinity or pod.preferred_anti_affinity
        all_nodes = state.get("all_nodes") or nodes
        if not has_terms and (not state["hints"].get("affinity_pods", True)
                              or not any(ni.with_affinity for ni in all_nodes)):
            return False
        pairs: dict[tuple, int] = defaultdict(int)
        for ni in all_nodes:
            labels = ni.labels
            if not has_terms and not ni.with_affinity:
                continue
            for other in ni.pods.values():
                if other.uid == pod.uid:
                    continue
                for t in pod.preferred_affinity:
                    if t.topology_key in labels and t.matches(other):
                        pairs[(t.topology_key, labels[t.topology_key])] += t.weight
                for t in pod.preferred_anti_affinity:
                    if t.topology_key in labels and t.matches(other):
                        pairs[(t.topology_key, labels[t.topology_key])] -= t.weight
                for t in other.affinity:
                    if t.topology_key in labels and t.matches(pod):
                        pairs[(t.topology_key, labels[t.topology_key])] += HARD_POD_AFFINITY_WEIGHT
                for t in other.preferred_affinity:
                    if t.topology_key in labels and t.matches(pod):
                        pairs[(t.topology_key, labels[t.topology_key])] += t.weight
                for t in other.preferred_anti_affinity:
                    if t.topology_key in labels and t.matches(pod):
                        pairs[(t.topology_key, labels[t.topology_key])] -= t.weight
        if not pairs:
            return False
        state[self.name + "/score"] = pairs
        return True

    def score(self, state, pod, nodes):
        pairs = state[self.name + "/score"]
        return [sum(pairs.get(p, 0) for p in ni.labels.items()) for ni in nodes]

    def normalize(self, scores):
        lo, hi = min(scores, default=0), max(scores, default=0)
        if hi - lo <= 0:
            return [0] * len(scores)
        return [int(MAX_SCORE * (s - lo) / (hi - lo)) for s in scores]
