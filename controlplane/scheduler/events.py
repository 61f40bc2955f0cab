"""Events the scheduler reports on pods: Scheduled, FailedScheduling, Preempted.

`kubectl describe pod` lists them (core/v1 Events whose involvedObject is the pod). Reporting is
best effort and must never slow scheduling down, so `emit` only puts the event on a bounded
queue and a few workers post it; when the queue is full the event is dropped, as client-go's
event broadcaster drops events rather than block its caller.

The same reason and message for the same pod again (a pod retried while nothing changed) bumps
`count` and `lastTimestamp` of the event already posted instead of adding a new one — what the
`(x3 over 2m)` in `kubectl describe` shows (client-go's event correlator does the same).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from datetime import datetime, timezone

from apiclient import EVENTS, ApiClient, ApiError

log = logging.getLogger("nodeagent.scheduler.events")

QUEUE_SIZE = 1000
WORKERS = 4


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class EventRecorder:
    def __init__(self, api: ApiClient, component: str):
        self.api, self.component = api, component
        self.instance = f"{component}-{socket.gethostname()}"
        self._queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        self._posted: dict[tuple, tuple[str, int]] = {}  # (uid, reason, message) → (event name, count)
        self.dropped = 0

    def emit(self, pod: dict, type_: str, reason: str, action: str, message: str) -> None:
        try:
            self._queue.put_nowait((pod, type_, reason, action, message))
        except asyncio.QueueFull:
            self.dropped += 1

    def forget(self, uid: str) -> None:
        """The pod is gone: drop what we remember of its events."""
        for k in [k for k in self._posted if k[0] == uid]:
            del self._posted[k]

    async def run(self) -> None:
        await asyncio.gather(*(self._worker() for _ in range(WORKERS)))

    async def _worker(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._post(*item)
            except ApiError as e:
                log.info("event %s for %s: %s", item[2], (item[0].get("metadata") or {}).get("name"), e)

    async def _post(self, pod: dict, type_: str, reason: str, action: str, message: str) -> None:
        md = pod.get("metadata") or {}
        ns, uid = md.get("namespace") or "default", md.get("uid", "")
        key = (uid, reason, message)
        seen = self._posted.get(key)
        if seen is not None:
            name, count = seen
            try:
                await self.api.patch(EVENTS, name, {"count": count + 1, "lastTimestamp": _now()}, ns)
                self._posted[key] = (name, count + 1)
                return
            except ApiError:
                pass  # gone (events expire): post a new one
        name = f"{md.get('name')}.{time.time_ns():x}"
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": ns, "name": md.get("name"),
                               "uid": uid, "resourceVersion": md.get("resourceVersion")},
            "reason": reason, "message": message, "type": type_,
            "source": {"component": self.component},
            "firstTimestamp": _now(), "lastTimestamp": _now(), "count": 1,
            "reportingComponent": self.component, "reportingInstance": self.instance, "action": action,
        }
        await self.api.create(EVENTS, event, ns)
        if type_ == "Warning":  # only failures repeat; a Scheduled event happens once per pod
            self._posted[key] = (name, 1)
