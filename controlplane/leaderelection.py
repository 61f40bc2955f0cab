"""Leader election through a coordination.k8s.io/v1 Lease, as client-go's `leaderelection` does it.

Several replicas of the controllers (or of the scheduler) may run against one API server; only the
one holding the Lease acts. The Lease is an ordinary object, and the API server's optimistic
concurrency (a PUT carries the resourceVersion it read; a second writer gets 409) is the whole
lock: two candidates that both see an expired Lease both try to update it, and exactly one wins.

The record lives in the Lease's spec:

    holderIdentity        who leads ("host_uuid"); "" after a clean release
    leaseDurationSeconds  how long others must wait, after they last saw the record change,
                          before they may take it (15 s)
    acquireTime           when the current holder took it (MicroTime)
    renewTime             the holder's last renewal (MicroTime)
    leaseTransitions      how many times the holder changed

The timing rules (client-go's defaults: lease 15 s, renew deadline 10 s, retry 2 s):

  * A candidate tries every `retry_period`. It never trusts the holder's clock: it notes *its own*
    monotonic time whenever the record it reads changes, and treats the Lease as expired only when
    the record has not changed for `lease_duration` by that local clock.
  * The leader renews every `retry_period`. If it has not managed to renew for `renew_deadline`,
    it stops leading — before anyone else may take over (renew_deadline < lease_duration), so two
    leaders never act at once as long as clocks run at the same rate.
  * On a clean stop the leader releases the Lease (holder "", duration 1 s) so that a successor
    need not wait out the full duration.

Unlike kube-controller-manager, which exits when it loses the lease, `LeaderElector.run` cancels
the leading coroutine and campaigns again: inside `nodeagent up` the controllers are one part of a
process that must go on serving. The leading coroutine is built afresh each time, so no state from
an earlier term survives.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Awaitable, Callable

from apiclient import LEASES, AlreadyExists, ApiClient, ApiError, Conflict, NotFound

log = logging.getLogger("nodeagent.leaderelection")

JITTER = 1.2  # client-go's JitterFactor: wait retry_period * (1 + random * 1.2) between attempts


def micro_time(t: float | None = None) -> str:
    """metav1.MicroTime's wire form: RFC 3339 with microseconds, UTC."""
    dt = datetime.fromtimestamp(time.time() if t is None else t, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_identity() -> str:
    """kube-controller-manager's form: hostname + "_" + a random UUID (unique per process)."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


@dataclass(frozen=True)
class LeaderElectionConfig:
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > JITTER * self.retry_period > 0:
            raise ValueError("leader election: need lease_duration > renew_deadline > "
                             f"{JITTER} * retry_period > 0")


class LeaderElector:
    def __init__(self, api: ApiClient, config: LeaderElectionConfig):
        self.api, self.config = api, config
        self.is_leader = False
        self.leading_terms = 0  # how many times this process became leader (tests, metrics)
        # what we last saw of the Lease, and when (our monotonic clock) it last changed
        self._observed: dict | None = None
        self._observed_at = 0.0

    # ---- one attempt ----

    def _record(self, spec: dict, now: float) -> dict:
        c = self.config
        ours = spec.get("holderIdentity") == c.identity
        transitions = int(spec.get("leaseTransitions") or 0)
        return {"holderIdentity": c.identity, "leaseDurationSeconds": int(c.lease_duration),
                "acquireTime": spec.get("acquireTime") if ours and spec.get("acquireTime") else micro_time(now),
                "renewTime": micro_time(now),
                "leaseTransitions": transitions if ours else transitions + 1}

    async def try_acquire_or_renew(self) -> bool:
        """One step of client-go's tryAcquireOrRenew: True if we hold the Lease afterwards."""
        c = self.config
        now = time.time()
        try:
            lease = await self.api.get(LEASES, c.name, c.namespace)
        except NotFound:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": c.name, "namespace": c.namespace},
                    "spec": self._record({}, now) | {"leaseTransitions": 0}}
            try:
                created = await self.api.create(LEASES, body, c.namespace)
            except (AlreadyExists, Conflict):
                return False
            self._observe(created["spec"])
            return True
        spec = lease.get("spec") or {}
        self._observe(spec)
        holder = spec.get("holderIdentity") or ""
        if holder and holder != c.identity:
            duration = float(spec.get("leaseDurationSeconds") or c.lease_duration)
            if time.monotonic() - self._observed_at < duration:
                return False  # someone else holds a lease that has not expired by our clock
        lease["spec"] = self._record(spec, now)
        try:
            updated = await self.api.update(LEASES, lease, c.namespace)
        except Conflict:
            return False  # another candidate wrote first
        self._observe(updated["spec"])
        return True

    def _observe(self, spec: dict) -> None:
        if spec != self._observed:
            self._observed = spec
            self._observed_at = time.monotonic()

    @property
    def holder(self) -> str:
        return (self._observed or {}).get("holderIdentity") or ""

    # ---- the loops ----

    def _expires_in(self) -> float | None:
        """Seconds until the holder's Lease expires by our clock (None: nobody holds it)."""
        if self._observed is None or not self.holder or self.holder == self.config.identity:
            return None
        duration = float(self._observed.get("leaseDurationSeconds") or self.config.lease_duration)
        return self._observed_at + duration - time.monotonic()

    async def _sleep_retry(self, expires_in: float | None = None) -> None:
        """The jittered retry period, but no longer than until the holder's Lease expires: a
        dead leader's successor then takes over at the expiry itself, not up to a retry period
        (2-4.4 s) later — lease duration + one poll, not + two, after the leader's last renewal."""
        delay = self.config.retry_period * (1 + random.random() * JITTER)
        if expires_in is not None:
            delay = min(delay, max(expires_in, 0.0) + 0.05)
        await asyncio.sleep(delay)

    async def acquire(self) -> None:
        """Return once we lead."""
        last_holder = None
        while True:
            try:
                if await self.try_acquire_or_renew():
                    return
            except ApiError as e:
                log.warning("lease %s/%s: %s", self.config.namespace, self.config.name, e)
            if self.holder != last_holder:
                last_holder = self.holder
                log.info("lease %s/%s is held by %s", self.config.namespace, self.config.name,
                         last_holder or "nobody")
            await self._sleep_retry(self._expires_in())

    async def _renew_until_lost(self) -> None:
        """Return when we could not renew for renew_deadline (leadership lost)."""
        c = self.config
        last_ok = time.monotonic()
        while True:
            await asyncio.sleep(c.retry_period)
            while True:
                try:
                    ok = await asyncio.wait_for(self.try_acquire_or_renew(),
                                                max(0.1, last_ok + c.renew_deadline - time.monotonic()))
                except (ApiError, asyncio.TimeoutError) as e:
                    log.warning("lease %s/%s: renew failed: %s", c.namespace, c.name, e)
                    ok = False
                if ok:
                    last_ok = time.monotonic()
                    break
                if time.monotonic() - last_ok >= c.renew_deadline:
                    return
                await asyncio.sleep(c.retry_period / 2)

    async def release(self) -> None:
        """Give the Lease up at once (client-go's ReleaseOnCancel), if we still hold it."""
        c = self.config
        try:
            lease = await self.api.get(LEASES, c.name, c.namespace)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != c.identity:
                return
            now = micro_time()
            lease["spec"] = {"holderIdentity": "", "leaseDurationSeconds": 1, "acquireTime": now,
                             "renewTime": now, "leaseTransitions": spec.get("leaseTransitions") or 0}
            await self.api.update(LEASES, lease, c.namespace)
        except ApiError as e:
            log.info("lease %s/%s: release failed: %s", c.namespace, c.name, e)

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Campaign; while leading, run `lead()` (a fresh coroutine per term). Runs until cancelled;
        on cancellation the leading coroutine is cancelled first, then the Lease is released."""
        c = self.config
        while True:
            await self.acquire()
            self.is_leader = True
            self.leading_terms += 1
            log.info("%s became leader of %s/%s", c.identity, c.namespace, c.name)
            work = asyncio.ensure_future(lead())
            renew = asyncio.ensure_future(self._renew_until_lost())
            try:
                done, _ = await asyncio.wait([work, renew], return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                for t in (work, renew):
                    t.cancel()
                await asyncio.gather(work, renew, return_exceptions=True)
                self.is_leader = False
                await asyncio.shield(self.release())
                raise
            for t in (work, renew):
                t.cancel()
            await asyncio.gather(work, renew, return_exceptions=True)
            self.is_leader = False
            if work in done:
                if work.exception() is not None:
                    log.error("%s: leading work failed: %r; releasing the lease", c.identity, work.exception())
                await self.release()
                if work.exception() is not None:
                    raise work.exception()
                return
            log.warning("%s lost the lease %s/%s (not renewed for %.0fs)", c.identity, c.namespace,
                        c.name, c.renew_deadline)
