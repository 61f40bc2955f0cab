"""The shape every controller shares: informer events → keys in a work queue → `sync(key)`.

A controller subclass:

    name        kube-controller-manager's name for it ("replicaset", "nodelifecycle", ...)
    __init__    takes the Context, asks the shared informers for what it watches and adds
                handlers that turn events into keys (`self.queue.add(key)`)
    sync(key)   makes the world match the object named by key, reading the informer caches and
                writing through the API; raising means "try this key again later"

`run()` starts `workers` tasks. A key whose sync raises is logged and re-added with its own
exponential backoff (queue.py) — one broken object never stops the controller serving the others.
`tick()` is an optional periodic hook (node lifecycle's monitor, pod GC's sweep).

Events (`self.events.emit`) are core/v1 Events like the ones `kubectl describe` shows
("SuccessfulCreate  Created pod: web-6b9f-x2x8z"), from a recorder named after the controller
(events.py); recording them is best effort.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from apiclient import ApiClient, ApiError, Conflict, NotFound, Resource

from controlplane.controllers.events import SOURCES, EventRecorder
from controlplane.controllers.informers import SharedInformers
from controlplane.controllers.meta import key_of
from controlplane.controllers.queue import ShutDown, WorkQueue

log = logging.getLogger("nodeagent.controllers")


@dataclass(frozen=True)
class ControllerOptions:
    """kube-controller-manager's flags that our controllers honour (defaults as upstream's)."""

    identity: str = ""  # leader election identity; "" → host_uuid
    leader_elect: bool = True
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    node_monitor_grace_period: float = 40.0  # --node-monitor-grace-period
    node_monitor_period: float = 5.0  # --node-monitor-period
    node_eviction_rate: float = 0.1  # --node-eviction-rate: nodes per second whose pods are evicted
    cluster_cidr: str = "10.244.0.0/16"  # --cluster-cidr
    node_cidr_mask_size: int = 24  # --node-cidr-mask-size
    allocate_node_cidrs: bool = True  # --allocate-node-cidrs
    terminated_pod_gc_threshold: int = 12500  # --terminated-pod-gc-threshold
    podgc_period: float = 20.0  # upstream's gcCheckPeriod
    workers: int = 5  # --concurrent-*-syncs (upstream: 5 for most)
    job_backoff_base: float = 10.0  # seconds before re-creating a failed Job pod (doubling)

    def __post_init__(self) -> None:
        """Bad flags are one clear line naming the flag, before anything starts."""
        import ipaddress
        try:
            net = ipaddress.ip_network(self.cluster_cidr, strict=False)
        except ValueError as e:
            raise ValueError(f"--cluster-cidr: {e}") from None
        if not net.prefixlen <= self.node_cidr_mask_size <= net.max_prefixlen:
            raise ValueError(f"--node-cidr-mask-size: {self.node_cidr_mask_size} does not fit in "
                             f"--cluster-cidr {self.cluster_cidr}")
        if self.node_monitor_grace_period <= 0 or self.node_monitor_period <= 0:
            raise ValueError("--node-monitor-grace-period and --node-monitor-period must be > 0")


@dataclass
class Context:
    api: ApiClient
    informers: SharedInformers
    options: ControllerOptions
    events: EventRecorder
    discovered: list[DiscoveredResource] = field(default_factory=list)


@dataclass(frozen=True)
class DiscoveredResource:
    """One served collection, from discovery: what the GC and the namespace controller walk."""

    res: Resource
    kind: str
    verbs: tuple[str, ...]

    @property
    def api_version(self) -> str:
        return f"{self.res.group}/{self.res.version}" if self.res.group else self.res.version


class Controller:
    name = ""
    workers = 0  # 0: ctx.options.workers
    tick_period = 0.0  # seconds between tick() calls; 0: never

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.api = ctx.api
        self.options = ctx.options
        self.events = ctx.events.for_component(SOURCES.get(self.name, self.name))
        self.queue = WorkQueue()
        self.log = logging.getLogger(f"nodeagent.controllers.{self.name}")
        self.synced_keys = 0  # how many syncs succeeded (tests, metrics)

    def enqueue(self, obj: dict) -> None:
        self.queue.add(key_of(obj))

    def on_change(self, type_: str, obj: dict, old: dict | None) -> None:
        """The usual handler: every event on the watched kind queues that object's key."""
        self.enqueue(obj)

    async def sync(self, key: str) -> None:
        raise NotImplementedError

    async def tick(self) -> None:
        """Periodic work (only if tick_period > 0)."""

    async def set_owner_refs(self, res: Resource, obj: dict, refs: list[dict]) -> dict | None:
        """Adopt or release `obj` by writing its ownerReferences, conditional on the
        resourceVersion we decided on: None when it is gone or changed under us (the next sync
        sees the new state), as upstream's ControllerRefManager does."""
        md = obj["metadata"]
        try:
            return await self.api.patch(res, md["name"], {"metadata": {
                "ownerReferences": refs, "resourceVersion": md["resourceVersion"]}}, md["namespace"])
        except (NotFound, Conflict):
            return None

    async def start(self) -> None:
        """Called once the informers have synced, before the workers start."""

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                await self.sync(key)
                self.queue.forget(key)
                self.synced_keys += 1
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - one object's failure must not stop the others
                delay = self.queue.add_rate_limited(key)
                level = logging.INFO if isinstance(e, ApiError) and e.code in (404, 409) else logging.WARNING
                self.log.log(level, "%s %s: %s (retry in %.3gs)", self.name, key,
                             e if isinstance(e, ApiError) else repr(e), delay,
                             exc_info=not isinstance(e, ApiError))
            finally:
                self.queue.done(key)

    async def _ticker(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001
                self.log.warning("%s periodic check failed: %r", self.name, e,
                                 exc_info=not isinstance(e, ApiError))
            await asyncio.sleep(self.next_tick_in())

    def next_tick_in(self) -> float:
        """Seconds to the next tick(): the period, unless a controller knows of something due sooner."""
        return self.tick_period

    async def run(self) -> None:
        await self.start()
        n = self.workers or self.options.workers
        tasks = [asyncio.ensure_future(self._worker()) for _ in range(n)]
        if self.tick_period > 0:
            tasks.append(asyncio.ensure_future(self._ticker()))
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shutdown()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
