"""The scheduling queue: which pod to try next, and when to try a rejected pod again.

Three places a pending pod can wait (upstream PriorityQueue):

    active          ready to be tried; highest priority first, then first come first served
    backoff         tried and failed recently; waits 1 s, 2 s, 4 s ... up to 10 s per attempt
                    before going back to active, so one hopeless pod cannot spin the loop
    unschedulable   no node fit and nothing has changed since; it stays here until a cluster
                    event that could make it fit (a node added or changed, a pod deleted, ...)
                    or for 5 minutes at most (upstream's podMaxInUnschedulablePodsDuration)

Each failure records which plugins rejected the pod; a cluster event moves only the pods
rejected by a plugin that cares about that event (a deleted pod frees cpu, so it wakes pods
NodeResourcesFit rejected, not those rejected by a taint) — upstream's queueing hints, coarsely.
An event that arrives while a pod is being tried (in flight) is not lost: the pod then goes to
backoff instead of unschedulable (upstream's moveRequestCycle).

Pods with spec.schedulingGates wait in `gated` until an update removes the gates.
Owned by the scheduler's event loop; `pop` is the only awaiting call.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from dataclasses import dataclass, field

from controlplane.scheduler.framework.plugin import ALL_EVENTS
from controlplane.scheduler.podinfo import PodInfo

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_UNSCHEDULABLE = 300.0

ACTIVE, BACKOFF, UNSCHEDULABLE, GATED, IN_FLIGHT = "active", "backoff", "unschedulable", "gated", "in-flight"


@dataclass
class QueuedPod:
    pod: PodInfo
    added: float  # when it first entered the queue (its place among equals)
    attempts: int = 0
    rejected_by: frozenset[str] = frozenset()
    where: str = ""
    since: float = 0.0  # when it entered its current place
    cycle: int = 0  # the scheduling cycle that popped it
    seq: int = field(default=0, repr=False)  # bumps on every move: stale heap entries are skipped


class SchedulingQueue:
    def __init__(self, plugin_events: dict[str, frozenset[str]] | None = None, clock=time.monotonic,
                 initial_backoff: float = INITIAL_BACKOFF, max_backoff: float = MAX_BACKOFF):
        self.clock = clock
        self.initial_backoff, self.max_backoff = initial_backoff, max_backoff
        self.plugin_events = plugin_events or {}
        self.pods: dict[str, QueuedPod] = {}  # uid → entry, wherever it is
        self._active: list[tuple] = []
        self._backoff: list[tuple] = []
        self._counter = itertools.count()
        self._wake = asyncio.Event()
        self.cycle = 0
        self._move_request_cycle = -1
        self._last_sweep = clock()

    # ---- placing entries ----
    def _put(self, qp: QueuedPod, where: str, since: float | None = None) -> None:
        qp.where, qp.since = where, self.clock() if since is None else since
        qp.seq = next(self._counter)
        if where == ACTIVE:
            heapq.heappush(self._active, (-qp.pod.priority, qp.added, qp.seq, qp.pod.uid))
            self._wake.set()
        elif where == BACKOFF:
            heapq.heappush(self._backoff, (self.backoff_until(qp), qp.seq, qp.pod.uid))
            self._wake.set()

    def backoff_until(self, qp: QueuedPod) -> float:
        if qp.attempts == 0:
            return qp.since
        return qp.since + min(self.max_backoff, self.initial_backoff * 2 ** (qp.attempts - 1))

    def _requeue(self, qp: QueuedPod) -> None:
        """Out of unschedulable: to backoff if its backoff has not run out, else active."""
        delay = min(self.max_backoff, self.initial_backoff * 2 ** max(qp.attempts - 1, 0)) if qp.attempts else 0
        if self.clock() < qp.since + delay:
            self._put(qp, BACKOFF, since=qp.since)  # backoff counts from the failure, not the move
        else:
            self._put(qp, ACTIVE)

    # ---- pod events ----
    def add(self, pod: PodInfo) -> None:
        if pod.uid in self.pods:
            self.update(pod)
            return
        qp = QueuedPod(pod, self.clock())
        self.pods[pod.uid] = qp
        self._put(qp, GATED if pod.gated else ACTIVE)

    def update(self, pod: PodInfo) -> None:
        qp = self.pods.get(pod.uid)
        if qp is None:
            self.add(pod)
            return
        old, qp.pod = qp.pod, pod
        if qp.where == GATED and not pod.gated:
            self._put(qp, ACTIVE)
        elif qp.where == UNSCHEDULABLE and old.raw.get("spec") != pod.raw.get("spec"):
            self._requeue(qp)  # the pod itself changed (tolerations, affinity, ...): try it again

    def delete(self, uid: str) -> None:
        qp = self.pods.pop(uid, None)
        if qp is not None:
            qp.where = ""  # heap entries for it are now stale

    def __contains__(self, uid: str) -> bool:
        return uid in self.pods

    # ---- the cycle ----
    def _flush(self) -> float | None:
        """Move due backoff entries (and long-unschedulable ones) to active; the next due time."""
        now = self.clock()
        while self._backoff:
            due, seq, uid = self._backoff[0]
            qp = self.pods.get(uid)
            if qp is None or qp.seq != seq or qp.where != BACKOFF:
                heapq.heappop(self._backoff)
                continue
            if due > now:
                break
            heapq.heappop(self._backoff)
            self._put(qp, ACTIVE)
        if now - self._last_sweep >= 1.0:  # a walk over every pod: not on every pop
            self._last_sweep = now
            for qp in [q for q in self.pods.values() if q.where == UNSCHEDULABLE
                       and now - q.since >= MAX_UNSCHEDULABLE]:
                self._put(qp, ACTIVE)
        return self._backoff[0][0] if self._backoff else None

    def pop_nowait(self) -> QueuedPod | None:
        self._flush()
        while self._active:
            _, _, seq, uid = heapq.heappop(self._active)
            qp = self.pods.get(uid)
            if qp is None or qp.seq != seq or qp.where != ACTIVE:
                continue
            self.cycle += 1
            qp.cycle = self.cycle
            qp.where = IN_FLIGHT
            qp.attempts += 1
            return qp
        return None

    async def pop(self) -> QueuedPod:
        while True:
            qp = self.pop_nowait()
            if qp is not None:
                return qp
            self._wake.clear()
            due = self._flush()
            timeout = min(max(due - self.clock(), 0.0), 30.0) if due is not None else 30.0
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    def done(self, uid: str) -> None:
        """Scheduled (assumed and sent to binding): it leaves the queue."""
        self.pods.pop(uid, None)

    def failed(self, qp: QueuedPod, rejected_by: frozenset[str]) -> None:
        """No node fit (or binding failed): wait in unschedulable, or backoff if the cluster
        changed while it was in flight."""
        if self.pods.get(qp.pod.uid) is not qp:
            return  # deleted meanwhile
        qp.rejected_by = rejected_by
        if self._move_request_cycle >= qp.cycle or not rejected_by:
            self._put(qp, BACKOFF)
        else:
            self._put(qp, UNSCHEDULABLE)

    def move(self, event: str) -> int:
        """A cluster event: wake the unschedulable pods it may help. How many moved."""
        self._move_request_cycle = self.cycle
        moved = 0
        for qp in list(self.pods.values()):
            if qp.where != UNSCHEDULABLE:
                continue
            if any(event in self.plugin_events.get(p, ALL_EVENTS) for p in qp.rejected_by):
                self._requeue(qp)
                moved += 1
        return moved

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for qp in self.pods.values():
            out[qp.where] = out.get(qp.where, 0) + 1
        return out

    def add_after_error(self, pod: PodInfo) -> None:
        """Binding failed for a reason other than the pod: try again after a backoff."""
        qp = self.pods.get(pod.uid)
        if qp is None:
            qp = self.pods[pod.uid] = QueuedPod(pod, self.clock(), attempts=1)
        self._put(qp, BACKOFF)
