"""What a filter says about a node, and the message a user reads when no node fits.

A filter plugin returns None for "fits" or a Status. The code matters for preemption:

    UNSCHEDULABLE   the node might fit if some pods on it went away (too little cpu, a host
                    port in use, another pod's anti-affinity): preemption may try this node
    UNRESOLVABLE    no eviction can help (an untolerated taint, a node selector, a missing
                    topology label): preemption skips the node
                    (upstream UnschedulableAndUnresolvable)

The FailedScheduling message is upstream's FitError.Error(): "0/N nodes are available: " then each
distinct reason with how many nodes gave it, sorted as strings, then what preemption found.
Users grep these strings and tools parse them, so they are upstream's, word for word.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

UNSCHEDULABLE = 1
UNRESOLVABLE = 2


@dataclass(frozen=True)
class Status:
    code: int
    reasons: tuple[str, ...]
    plugin: str = ""


def unschedulable(plugin: str, *reasons: str) -> Status:
    return Status(UNSCHEDULABLE, reasons, plugin)


def unresolvable(plugin: str, *reasons: str) -> Status:
    return Status(UNRESOLVABLE, reasons, plugin)


def fit_error(num_nodes: int, statuses: dict[str, Status], prefilter_msg: str = "",
              postfilter_msg: str = "") -> str:
    """upstream framework.FitError.Error()."""
    msg = f"0/{num_nodes} nodes are available:"
    if prefilter_msg:
        msg += f" {prefilter_msg}."
    else:
        counts: Counter[str] = Counter()
        for st in statuses.values():
            counts.update(st.reasons)
        parts = sorted(f"{n} {reason}" for reason, n in counts.items())
        if parts:
            msg += f" {', '.join(parts)}."
    if postfilter_msg:
        msg += f" {postfilter_msg}."
    return msg
