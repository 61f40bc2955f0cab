"""Node-pressure eviction (the kubelet's pkg/kubelet/eviction).

A node that runs out of memory, disk, inodes or process IDs fails everything on it at once. The
kubelet watches *signals* against *thresholds* and acts first: it reports the pressure as a node
condition, refuses new pods, frees what the node itself can (unused images), and then evicts
pods one at a time, the ones using most beyond what they asked for first.

    thresholds.py   the signals and the flags: --eviction-hard / -soft / -soft-grace-period /
                    -minimum-reclaim, parsed as the kubelet parses them
    stats.py        what is measured: the node's signals, and what each pod uses
    rank.py         which pod goes first, its grace period, and the Evicted message
    localstorage.py pods over an emptyDir sizeLimit or an ephemeral-storage limit, evicted
                    whatever the node's signals say
    manager.py      the loop: conditions with their transition period, grace periods of soft
                    thresholds, reclaim, eviction; and the admission check under pressure

An evicted pod is killed by its pod worker and reported phase Failed, reason Evicted, with the
message and a DisruptionTarget condition (reason TerminationByKubelet); it stays in the API, as
an evicted pod does, until someone deletes it.

Not here: allocatableMemory.available (enforce-node-allocatable), containerfs.* signals and a
split image filesystem, the memcg threshold notifier (we poll every 10 s), the annotations
(offending_containers, ...) on the Evicted event, and acting only on freshly updated stats
(thresholdsUpdatedStats: ours are measured anew on every pass).
"""

from nodeagent.eviction.manager import REASON, EvictionManager, thresholds_met
from nodeagent.eviction.stats import ContainerUsage, Observation, PodStatsSource, PodUsage
from nodeagent.eviction.thresholds import (
    DEFAULT_HARD, EvictionConfig, Threshold, ThresholdError, Value, hard_reservation, parse_config)

__all__ = ["REASON", "EvictionManager", "thresholds_met", "ContainerUsage", "Observation",
           "PodStatsSource", "PodUsage", "DEFAULT_HARD", "EvictionConfig", "Threshold",
           "ThresholdError", "Value", "hard_reservation", "parse_config"]
