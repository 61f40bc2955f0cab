"""The eviction manager's loop (pkg/kubelet/eviction/eviction_manager.go synchronize).

Every 10 s (monitoringInterval), or sooner after an eviction has been cleaned up:

    1. observe     the node's signals (stats.py)
    2. met         the thresholds the observations cross, ignoring grace periods — and, with
                   --eviction-minimum-reclaim, those met last time whose signal has not yet
                   climbed back above threshold + minimum (so one eviction is not followed by
                   another the moment the signal dips again)
    3. conditions  each met threshold's condition (MemoryPressure, DiskPressure, PIDPressure).
                   A condition stays True until it has gone unobserved for
                   --eviction-pressure-transition-period (5m): a node hovering at its
                   threshold does not flap between pressure and none, nor keep flipping its
                   admission and the scheduler's taints
    4. grace       a soft threshold acts only once it has been met continuously for its grace
                   period (the first time it was seen is remembered; a pass that does not see it
                   forgets it); a hard one acts at once
    5. limits      pods over a local storage limit (an emptyDir's sizeLimit, ephemeral-storage
                   limits) are evicted whatever the signals say (localstorage.py); if any was,
                   the pass ends there
    6. reclaim     memory first, then the others; for a disk signal, node-level reclaim before
                   any pod: every unused image goes (image GC's delete_unused; the kubelet
                   first removes every dead container as well, not done here), and if the
                   thresholds are then satisfied, no pod is evicted
    7. evict       rank the active pods for the signal's resource (rank.py), kill the first that
                   is not critical — hard: grace 1 s; soft: min(--eviction-max-pod-grace-period,
                   the pod's own) — and report it Failed/Evicted with the kubelet's message. At
                   most one pod per pass; the next pass waits (up to 30 s) until that pod is gone.

Under pressure, admission (admit) refuses new pods: under MemoryPressure alone only BestEffort
ones (unless they tolerate the node.kubernetes.io/memory-pressure taint), under any other
condition every pod; critical pods are always admitted.

Time comes from `clock` (time.monotonic) and observations from `observe_fn`, so a test drives
grace periods and transition periods with a fake of each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

from nodeagent.admission import Rejection
from nodeagent.cri.api import CRIError
from nodeagent.eviction import localstorage
from nodeagent.eviction.rank import eviction_grace, is_critical, message, rank
from nodeagent.eviction.stats import Observation, PodUsage, observe_node
from nodeagent.eviction.thresholds import EvictionConfig, Threshold
from nodeagent.resources import qos_class

log = logging.getLogger("nodeagent.eviction")

MONITORING_INTERVAL = 10.0
CLEANUP_TIMEOUT, CLEANUP_POLL = 30.0, 1.0      # podCleanupTimeout, podCleanupPollFreq
REASON = "Evicted"
MEMORY_SIGNALS = ("memory.available",)


def thresholds_met(thresholds, obs: dict[str, Observation], enforce_min_reclaim: bool) -> list[Threshold]:
    """thresholdsMet: observed below the threshold (plus its minimum reclaim, when enforced).
    A signal with no observation meets nothing."""
    out = []
    for t in thresholds:
        o = obs.get(t.signal)
        if o is None:
            continue
        quantity = t.value.amount(o.capacity)
        if enforce_min_reclaim and t.min_reclaim is not None:
            quantity += t.min_reclaim.amount(o.capacity)
        if o.available < quantity:
            out.append(t)
    return out


def _tolerates_memory_pressure(pod: dict) -> bool:
    """Does a toleration match the taint node.kubernetes.io/memory-pressure:NoSchedule
    (Toleration.ToleratesTaint: effect and key match when given; Exists, or Equal to the
    taint's empty value)?"""
    for t in (pod.get("spec") or {}).get("tolerations") or []:
        if t.get("effect") and t["effect"] != "NoSchedule":
            continue
        if t.get("key") and t["key"] != "node.kubernetes.io/memory-pressure":
            continue
        op = t.get("operator") or "Equal"
        if op == "Exists" or (op == "Equal" and not t.get("value")):
            return True
    return False


class EvictionManager:
    def __init__(self, config: EvictionConfig, data_dir: str,
                 active_pods: Callable[[], list[dict]],
                 evict: Callable[[dict, str, float, bool], None],
                 changed: Callable[[], None] = lambda: None, *,
                 image_dir: str | None = None,
                 pod_stats: Callable[[list[dict], bool], Awaitable[dict[str, PodUsage]]] | None = None,
                 reclaim: Callable[[], Awaitable[None]] | None = None,
                 node_event: Callable[[str, str, str], None] = lambda *a: None,
                 cleaned_up: Callable[[dict], bool] = lambda pod: True,
                 observe_fn=None, clock: Callable[[], float] = time.monotonic):
        self.config, self.data_dir, self.image_dir = config, data_dir, image_dir
        self.active_pods = active_pods          # admitted, not terminated pods
        self.evict = evict                      # pod workers: kill it (message, grace, whether
                                                # a DisruptionTarget condition goes with it)
        self.changed = changed                  # node status: write the conditions now
        self.pod_stats = pod_stats              # stats.PodStatsSource; None: no pod stats
        self.reclaim = reclaim                  # image GC's delete_unused (disk signals)
        self.node_event = node_event
        self.cleaned_up = cleaned_up            # has the evicted pod's worker finished?
        self.observe = observe_fn or (lambda: observe_node(data_dir, image_dir))
        self.clock = clock
        # state, owned by synchronize()
        self.conditions: set[str] = set()                 # the conditions now reported True
        self.first_observed: dict[Threshold, float] = {}  # met threshold → since when
        self.condition_last_seen: dict[str, float] = {}   # condition → last pass that saw it
        self.met: list[Threshold] = []                    # met, grace periods satisfied

    def under(self, condition: str) -> bool:
        return condition in self.conditions

    def admit(self, pod: dict) -> Rejection | None:
        """The kubelet's eviction admission (managerImpl.Admit)."""
        if not self.conditions or is_critical(pod):
            return None
        if self.conditions == {"MemoryPressure"}:
            if qos_class(pod) != "BestEffort" or _tolerates_memory_pressure(pod):
                return None
        names = " ".join(sorted(self.conditions))
        return Rejection(REASON, f"The node had condition: [{names}]. ")

    async def _observe(self) -> dict[str, Observation]:
        return await asyncio.to_thread(self.observe)

    async def synchronize(self) -> list[dict]:
        """One pass; the pods evicted (for node pressure at most one)."""
        cfg = self.config
        obs = await self._observe()
        met = thresholds_met(cfg.thresholds, obs, False)
        if self.met:
            met += [t for t in thresholds_met(self.met, obs, True) if t not in met]
        now = self.clock()
        first = {t: self.first_observed.get(t, now) for t in met}
        seen = {t.condition for t in met}
        last_seen = {**self.condition_last_seen, **{c: now for c in seen}}
        conditions = {c for c, at in last_seen.items() if now - at < cfg.pressure_transition_period}
        acting = [t for t, since in first.items() if now - since >= t.grace_period]
        self.first_observed, self.condition_last_seen, self.met = first, last_seen, acting
        if conditions != self.conditions:
            log.info("node pressure: %s", ", ".join(sorted(conditions)) or "none")
            self.conditions = conditions
            self.changed()
        evicted = await self._local_storage_eviction()
        if evicted or not acting:
            return evicted
        # byEvictionPriority: memory before every other resource
        threshold = sorted(acting, key=lambda t: t.signal not in MEMORY_SIGNALS)[0]
        resource = threshold.resource
        log.info("eviction: attempting to reclaim %s", resource)
        self.node_event("Warning", "EvictionThresholdMet", f"Attempting to reclaim {resource}")
        if resource in ("ephemeral-storage", "inodes") and self.reclaim is not None:
            await self.reclaim()
            if not thresholds_met(cfg.thresholds, await self._observe(), True):
                log.info("eviction: reclaimed %s without evicting pods", resource)
                return []
        pods = self.active_pods()
        if not pods:
            log.info("eviction: thresholds met, but no pods are active to evict")
            return []
        stats = await self.pod_stats(pods, resource in ("ephemeral-storage", "inodes")) \
            if self.pod_stats is not None else {}
        for pod in rank(pods, resource, stats):
            if is_critical(pod):
                log.info("eviction: cannot evict a critical pod %s", pod["metadata"].get("name"))
                continue
            text = message(resource, pod, stats.get(pod["metadata"]["uid"]), acting, obs)
            grace = eviction_grace(pod, threshold, cfg.max_pod_grace_period)
            log.info("evicting pod %s/%s (grace %ss): %s", pod["metadata"].get("namespace"),
                     pod["metadata"].get("name"), grace, text)
            self.evict(pod, text, grace, True)
            return [pod]
        log.info("eviction: unable to evict any pods from the node")
        return []

    async def _local_storage_eviction(self) -> list[dict]:
        """localStorageEviction: every pod over an emptyDir sizeLimit or an ephemeral-storage
        limit goes (grace 1 s), before and whatever the node's signals say."""
        pods = [p for p in self.active_pods() if localstorage.limited(p)]
        if not pods or self.pod_stats is None:
            return []
        stats = await self.pod_stats(pods, True)
        evicted = []
        for pod in pods:
            usage = stats.get(pod["metadata"]["uid"])
            text = localstorage.violation(pod, usage) if usage is not None else None
            if text is None or is_critical(pod):
                continue
            log.info("evicting pod %s/%s: %s", pod["metadata"].get("namespace"),
                     pod["metadata"].get("name"), text)
            self.evict(pod, text, 1.0, False)
            evicted.append(pod)
        return evicted

    async def wait_cleanup(self, pods: list[dict]) -> None:
        """waitForPodsCleanup: until the evicted pods' workers are done, at most 30 s."""
        deadline = self.clock() + CLEANUP_TIMEOUT
        while not all(self.cleaned_up(p) for p in pods) and self.clock() < deadline:
            await asyncio.sleep(CLEANUP_POLL)

    async def run(self) -> None:
        while True:
            try:
                evicted = await self.synchronize()
            except (OSError, CRIError) as e:
                # a failed observation or reclaim: logged, and the next pass tries again (the
                # kubelet's loop does the same) — the agent must not stop over it
                log.warning("eviction: %s", e)
                evicted = []
            if evicted:
                await self.wait_cleanup(evicted)
            else:
                await asyncio.sleep(MONITORING_INTERVAL)
