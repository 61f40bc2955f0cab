"""The scheduling framework: plugins at extension points, run in upstream's order with its weights.

    plugin.py     the contract (pre_filter, filter, pre_score, score, normalize) and cluster events
    status.py     filter results and the FailedScheduling message
    plugins/      the default plugins, one module each
    runtime.py    Framework: the plugin list and how a cycle calls it

Filters run in upstream's default order and stop at the first that rejects a node, so each node
contributes one plugin's reasons to the message, as upstream's.
"""

from controlplane.scheduler.framework.runtime import Framework

__all__ = ["Framework"]
