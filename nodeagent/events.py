"""The event recorder: what `kubectl describe` shows under Events, and how it stays small.

A pod in CrashLoopBackOff would otherwise write a new Event every ten seconds for ever. client-go's
recorder (tools/record, events_cache.go) de-duplicates on the client: two events with the same
source, object, type, reason and message are *one* Event whose `count` grows and whose
`lastTimestamp` moves. The first is a POST of a new Event named `<object>.<hex nanoseconds>`;
each repeat is a PATCH of that Event's count and lastTimestamp.

Recording never blocks the caller (a pod worker): events go into a bounded queue that one task
drains; when the API is slow and the queue is full, events are dropped (client-go does the same —
events are best-effort, status is not).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone

from apiclient import EVENTS, ApiClient, ApiError, NotFound

log = logging.getLogger("nodeagent.events")

NORMAL, WARNING = "Normal", "Warning"
QUEUE_SIZE = 1000
CACHE_SIZE = 4096


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ref(obj: dict, field_path: str = "") -> dict:
    md = obj.get("metadata") or {}
    ref = {"kind": obj.get("kind", "Pod"), "apiVersion": obj.get("apiVersion", "v1"),
           "name": md.get("name", ""), "uid": md.get("uid", ""),
           "resourceVersion": md.get("resourceVersion", "")}
    if md.get("namespace"):
        ref["namespace"] = md["namespace"]
    if field_path:
        ref["fieldPath"] = field_path
    return ref


class EventRecorder:
    def __init__(self, api: ApiClient, component: str, host: str):
        self.api, self.component, self.host = api, component, host
        self._queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        # aggregation key → (namespace, event name, count); owned by run()
        self._seen: dict[tuple, tuple[str, str, int]] = {}
        self.dropped = 0

    def event(self, obj: dict, type_: str, reason: str, message: str, field_path: str = "") -> None:
        """Record an event about obj (a Pod or Node dict). Never blocks, never raises."""
        try:
            self._queue.put_nowait((_ref(obj, field_path), type_, reason, message, time.time()))
        except asyncio.QueueFull:
            self.dropped += 1

    async def run(self) -> None:
        while True:
            ref, type_, reason, message, at = await self._queue.get()
            try:
                await self._write(ref, type_, reason, message, at)
            except ApiError as e:
                log.info("event %s %s/%s dropped: %s", reason, ref.get("namespace"), ref["name"], e)
            finally:
                self._queue.task_done()

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until every recorded event has been written (tests; a clean shutdown)."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except asyncio.TimeoutError:
            pass

    async def _write(self, ref: dict, type_: str, reason: str, message: str, at: float) -> None:
        ns = ref.get("namespace") or "default"
        key = (self.component, self.host, ref["kind"], ns, ref["name"], ref["uid"],
               ref.get("fieldPath", ""), type_, reason, message)
        stamp = datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        seen = self._seen.get(key)
        if seen is not None:
            ev_ns, name, count = seen
            try:
                await self.api.patch(EVENTS, name, {"count": count + 1, "lastTimestamp": stamp},
                                     ev_ns, type="strategic")
                self._seen[key] = (ev_ns, name, count + 1)
                return
            except NotFound:
                pass  # it expired from the server (events have a TTL): start a new one
        name = f"{ref['name']}.{int(at * 1e9):x}"
        body = {"apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": ns},
                "involvedObject": ref, "reason": reason, "message": message, "type": type_,
                "source": {"component": self.component, "host": self.host},
                "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
                "reportingComponent": self.component, "reportingInstance": self.host}
        await self.api.create(EVENTS, body, ns)
        if len(self._seen) >= CACHE_SIZE:
            self._seen.pop(next(iter(self._seen)))   # oldest first (insertion order): an LRU enough
        self._seen[key] = (ns, name, 1)
