"""Events the controllers record: client-go's record.EventRecorder, as kube-controller-manager uses it.

What `kubectl describe` shows under Events comes from here ("SuccessfulCreate  Created pod: ..."),
and two details of upstream's recorder are visible there:

  - the source. Each controller has its own recorder, named after it (`deployment-controller`,
    `job-controller`, `node-controller`, ...): the From column. `for_component` hands a
    controller its own recorder over the one queue they all share.
  - repeats. The same event again (same source, object, type, reason and message) is not a new
    Event: the one already written gets `count + 1` and a new `lastTimestamp` (client-go's
    events_cache.go, the "(x3 over 2m)" in describe).

Recording is best effort and never blocks a controller: `emit` puts the event on a bounded queue
that one task drains in order (so a repeat always finds the Event it repeats); when the queue is
full the event is dropped, as client-go's broadcaster drops rather than blocks.

An event about a cluster-scoped object (a Node) lives in namespace `default` but its
involvedObject has no namespace, as upstream's: `kubectl describe node` searches for exactly that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone

from apiclient import EVENTS, ApiClient, ApiError, NotFound

log = logging.getLogger("nodeagent.controllers.events")

QUEUE_SIZE = 1000
CACHE_SIZE = 4096

# kube-controller-manager's event sources, by controller name (each upstream controller builds
# its recorder with EventSource{Component: ...}); a controller not listed uses its own name.
SOURCES = {
    "replicaset": "replicaset-controller",
    "deployment": "deployment-controller",
    "daemonset": "daemonset-controller",
    "job": "job-controller",
    "cronjob": "cronjob-controller",
    "statefulset": "statefulset-controller",
    "disruption": "controllermanager",
    "nodelifecycle": "node-controller",
    "nodeipam": "cidrAllocator",
    "endpoint": "endpoint-controller",
    "endpointslice": "endpoint-slice-controller",
    "namespace": "namespace-controller",
    "garbagecollector": "garbage-collector-controller",
    "ttl-after-finished": "ttl-after-finished-controller",
    "podgc": "pod-garbage-collector",
}


def _stamp(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Sink:
    """The queue all of one controller manager's recorders write to, and its one writer task."""

    def __init__(self, api: ApiClient):
        self.api = api
        self.queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        # aggregation key → (event name, count); owned by the writer task
        self.seen: dict[tuple, tuple[str, int]] = {}
        self.writer: asyncio.Task | None = None
        self.dropped = 0

    def put(self, item: tuple) -> None:
        if self.writer is None or self.writer.done():
            self.writer = asyncio.ensure_future(self._run())
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _run(self) -> None:
        while True:
            item = await self.queue.get()
            try:
                await self._write(*item)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - best effort: a lost event must not stop the writer
                log.debug("event %s not recorded: %s", item[3], e if isinstance(e, ApiError) else repr(e))
            finally:
                self.queue.task_done()

    async def _write(self, component: str, ref: dict, type_: str, reason: str, message: str,
                     at: float) -> None:
        ns = ref.get("namespace") or "default"
        key = (component, ref.get("kind"), ns, ref.get("name"), ref.get("uid"), type_, reason, message)
        seen = self.seen.get(key)
        if seen is not None:
            name, count = seen
            try:
                await self.api.patch(EVENTS, name, {"count": count + 1, "lastTimestamp": _stamp(at)},
                                     ns, type="strategic")
                self.seen[key] = (name, count + 1)
                return
            except NotFound:
                pass  # expired (events have a TTL): start a new one
        name = f"{ref.get('name', '')}.{int(at * 1e9):x}"
        body = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
                "involvedObject": ref, "reason": reason, "message": message, "type": type_,
                "count": 1, "firstTimestamp": _stamp(at), "lastTimestamp": _stamp(at),
                "source": {"component": component}, "reportingComponent": component,
                "reportingInstance": ""}
        await self.api.create(EVENTS, body, ns)
        if len(self.seen) >= CACHE_SIZE:
            self.seen.pop(next(iter(self.seen)))   # oldest first (insertion order)
        self.seen[key] = (name, 1)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.cancel()
            self.writer = None

    async def flush(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.queue.join(), timeout)
        except asyncio.TimeoutError:
            pass


class EventRecorder:
    def __init__(self, api: ApiClient, component: str = "kube-controller-manager",
                 sink: _Sink | None = None):
        self.api, self.component = api, component
        self._sink = sink or _Sink(api)

    def for_component(self, component: str) -> EventRecorder:
        """A recorder with its own source name, writing through the same queue."""
        return EventRecorder(self.api, component, self._sink)

    def emit(self, obj: dict, type_: str, reason: str, message: str) -> None:
        """Record an event about obj (any object with kind and metadata). Never blocks or raises."""
        md = obj.get("metadata") or {}
        ref = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": md.get("name"),
               "uid": md.get("uid"), "resourceVersion": md.get("resourceVersion")}
        if md.get("namespace"):
            ref["namespace"] = md["namespace"]
        self._sink.put((self.component, ref, type_, reason, message, time.time()))

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until every recorded event has been written (tests; a clean stop)."""
        await self._sink.flush(timeout)

    def close(self) -> None:
        """Stop the writer (the end of a term of leadership); what is still queued is dropped."""
        self._sink.close()
