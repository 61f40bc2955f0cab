"""Node-pressure eviction, the basics (the kubelet's pkg/kubelet/eviction).

A node that runs out of memory or disk fails everything on it. The kubelet watches a few
*signals* against *hard thresholds* (--eviction-hard, default memory.available<100Mi and
nodefs.available<10%) and acts before that happens:

    every 10 s (monitoringInterval)
      1. observe    memory.available (the machine's available memory) and nodefs.available
                    (free bytes on the filesystem of the data dir)
      2. conditions a met threshold sets the Node's MemoryPressure / DiskPressure to True (the
                    node status reads them from here), and the node refuses pods: under
                    MemoryPressure BestEffort pods, under DiskPressure every pod, rejected with
                    reason Evicted, "The node had condition: [MemoryPressure]. "
      3. evict      at most one pod per pass: the pod worker kills it (grace 1 s for a hard
                    threshold) and its status becomes phase Failed, reason Evicted, message
                    "The node was low on resource: memory. Threshold quantity: 100Mi,
                    available: 51200Ki. ", with a DisruptionTarget condition (reason
                    TerminationByKubelet) and a Warning event Evicted. The pod stays in the API,
                    as an evicted pod does, until someone deletes it.

Which pod goes first (rankMemoryPressure, simplified): BestEffort before Burstable before
Guaranteed — the order of their claim on the node — then the higher memory request last. Not
here yet: soft thresholds and grace periods, inode and imagefs signals, per-pod usage ranking,
node-level reclaim (image GC before evicting), pod priority.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Callable

from nodeagent.admission import Rejection
from nodeagent.errors import AgentError
from nodeagent.resources import QuantityError, bytes_of, qos_class

log = logging.getLogger("nodeagent.eviction")

MONITORING_INTERVAL = 10.0
REASON = "Evicted"
SIGNALS = {"memory.available": ("memory", "MemoryPressure"),
           "nodefs.available": ("ephemeral-storage", "DiskPressure")}
DEFAULT_HARD = "memory.available<100Mi,nodefs.available<10%"
_QOS_ORDER = {"BestEffort": 0, "Burstable": 1, "Guaranteed": 2}


@dataclass(frozen=True)
class Threshold:
    signal: str
    text: str                         # as given: "100Mi" or "10%"
    quantity: int | None = None       # bytes
    percent: float | None = None      # of capacity

    def value(self, capacity: int) -> int:
        return self.quantity if self.quantity is not None else int(capacity * self.percent / 100)


def parse_eviction_hard(text: str) -> tuple[Threshold, ...]:
    """--eviction-hard: "memory.available<100Mi,nodefs.available<10%"."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.fullmatch(r"([a-z.]+)<(.+)", part)
        if not m:
            raise AgentError(f"--eviction-hard: {part!r} is not SIGNAL<QUANTITY (like memory.available<100Mi)")
        signal, value = m.groups()
        if signal not in SIGNALS:
            raise AgentError(f"--eviction-hard: signal {signal!r} is not supported here "
                             f"({', '.join(SIGNALS)} are)")
        if value.endswith("%"):
            try:
                pct = float(value[:-1])
            except ValueError:
                raise AgentError(f"--eviction-hard: {part!r}: bad percentage") from None
            if not 0 < pct <= 100:
                raise AgentError(f"--eviction-hard: {part!r}: a percentage must be in (0, 100]")
            out.append(Threshold(signal, value, percent=pct))
        else:
            try:
                out.append(Threshold(signal, value, quantity=bytes_of(value)))
            except QuantityError as e:
                raise AgentError(f"--eviction-hard: {part!r}: {e}") from None
    return tuple(out)


def observe(data_dir: str) -> dict[str, tuple[int, int]]:
    """signal → (available, capacity), in bytes (blocking: psutil)."""
    import psutil
    mem = psutil.virtual_memory()
    du = psutil.disk_usage(data_dir)
    return {"memory.available": (mem.available, mem.total), "nodefs.available": (du.free, du.total)}


def format_bytes(n: int) -> str:
    """A quantity as the kubelet prints an observed amount (Ki, like resource.Quantity)."""
    return f"{n // 1024}Ki"


class EvictionManager:
    def __init__(self, thresholds: tuple[Threshold, ...], data_dir: str,
                 active_pods: Callable[[], list[dict]], evict: Callable[[dict, str], None],
                 changed: Callable[[], None] = lambda: None, observe_fn=observe):
        self.thresholds, self.data_dir = thresholds, data_dir
        self.active_pods = active_pods          # admitted, not terminated pods
        self.evict = evict                      # pod workers: kill it, report it Evicted
        self.changed = changed                  # node status: write the conditions now
        self.observe = observe_fn
        self.conditions: set[str] = set()       # MemoryPressure / DiskPressure now true

    def under(self, condition: str) -> bool:
        return condition in self.conditions

    def admit(self, pod: dict) -> Rejection | None:
        """The kubelet's eviction admission: under memory pressure no BestEffort pod, under disk
        pressure no pod at all."""
        if not self.conditions:
            return None
        if "DiskPressure" in self.conditions or qos_class(pod) == "BestEffort":
            names = " ".join(sorted(self.conditions))
            return Rejection(REASON, f"The node had condition: [{names}]. ")
        return None

    async def synchronize(self) -> dict | None:
        """One pass; the pod evicted, if any."""
        obs = await asyncio.to_thread(self.observe, self.data_dir)
        met = [(t, *obs[t.signal]) for t in self.thresholds
               if t.signal in obs and obs[t.signal][0] < t.value(obs[t.signal][1])]
        now = {SIGNALS[t.signal][1] for t, _, _ in met}
        if now != self.conditions:
            log.info("node pressure: %s", ", ".join(sorted(now)) or "none")
            self.conditions = now
            self.changed()
        if not met:
            return None
        threshold, available, _ = met[0]
        pods = self.active_pods()
        if not pods:
            return None
        victim = min(pods, key=_rank)
        resource = SIGNALS[threshold.signal][0]
        message = (f"The node was low on resource: {resource}. Threshold quantity: "
                   f"{threshold.text}, available: {format_bytes(available)}. ")
        log.info("evicting pod %s/%s: %s", victim["metadata"].get("namespace"),
                 victim["metadata"].get("name"), message)
        self.evict(victim, message)
        return victim

    async def run(self) -> None:
        while True:
            try:
                await self.synchronize()
            except OSError as e:
                log.warning("eviction: %s", e)
            await asyncio.sleep(MONITORING_INTERVAL)


def _rank(pod: dict) -> tuple:
    from nodeagent.resources import amounts
    requested = sum(amounts(c).memory_request or 0
                    for c in (pod.get("spec") or {}).get("containers") or [])
    return (_QOS_ORDER.get(qos_class(pod), 0), requested)
