"""ImageLocality: prefer nodes that already have the pod's images (no pull before start).

Each image present on the node counts its size scaled by the share of nodes that have it (an
image on every node says nothing about this one: upstream's "spread" scaling). The sum is clamped
between 23 MB and 1,000 MB per container and mapped linearly onto 0..100. Node images come from
node.status.images, which the node agent reports.
"""

from __future__ import annotations

from controlplane.scheduler.framework.plugin import MAX_SCORE, Plugin

MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
MAX_CONTAINER_THRESHOLD = 1000 * MB


class ImageLocality(Plugin):
    name = "ImageLocality"
    weight = 1

    def __init__(self, cache):
        self.cache = cache  # for how many nodes have each image

    def pre_score(self, state, pod, nodes):
        return any(img in self.cache.image_nodes for img in pod.images)

    def score(self, state, pod, nodes):
        total = len(self.cache.node_list()) or 1
        containers = len((pod.raw.get("spec") or {}).get("containers") or ()) + \
            len((pod.raw.get("spec") or {}).get("initContainers") or ())
        max_threshold = MAX_CONTAINER_THRESHOLD * max(containers, 1)
        out = []
        for ni in nodes:
            s = 0
            for img in pod.images:
                size = ni.images.get(img)
                if size:
                    s += int(size * (self.cache.image_nodes.get(img, 0) / total))
            s = min(max(s, MIN_THRESHOLD), max_threshold)
            out.append(MAX_SCORE * (s - MIN_THRESHOLD) // (max_threshold - MIN_THRESHOLD))
        return out
