"""NodeAffinity: spec.nodeSelector and spec.affinity.nodeAffinity.

Filter: every nodeSelector label must match, and (if given) one of the required
nodeSelectorTerms. Score: the sum of the weights of the preferred terms the node matches,
scaled so the best node gets 100.
"""

from __future__ import annotations

from controlplane.scheduler.framework.plugin import Plugin, default_normalize
from controlplane.scheduler.framework.status import unresolvable
from controlplane.scheduler.labels import node_matches_terms

REASON = "node(s) didn't match Pod's node affinity/selector"


def node_matches(pod, ni) -> bool:
    labels = ni.labels
    for k, v in pod.node_selector.items():
        if labels.get(k) != v:
            return False
    if pod.required_node_terms is not None:
        return node_matches_terms(pod.required_node_terms, labels, ni.name)
    return True


class NodeAffinity(Plugin):
    name = "NodeAffinity"
    weight = 2
    filters = True

    def pre_filter(self, state, pod, nodes):
        return bool(pod.node_selector) or pod.required_node_terms is not None

    def filter(self, state, pod, ni):
        return None if node_matches(pod, ni) else unresolvable(self.name, REASON)

    def pre_score(self, state, pod, nodes):
        return bool(pod.preferred_node_terms)

    def score(self, state, pod, nodes):
        return [sum(w for w, term in pod.preferred_node_terms if term.matches(ni.labels, ni.name))
                for ni in nodes]

    def normalize(self, scores):
        return default_normalize(scores)
