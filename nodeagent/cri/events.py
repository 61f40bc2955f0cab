"""Container events (CRI's GetContainerEvents, the "evented PLEG"): created, started, stopped,
deleted — pushed to the kubelet side so that it does not poll.

Created, started and deleted happen inside the service's own calls, which publish them. Stopped
happens on its own: the container's program exits. We learn it without polling and without being
anyone's parent through a pidfd of the container's *supervisor*: the supervisor writes exit.json
and then exits itself, and a pidfd becomes readable when its process has exited (pidfd_open(2)
works for any process, not only children). The event loop watches each pidfd with add_reader —
no thread per container. The (pid, start time) pair recorded at create guards against a reused
pid; a pidfd, once open, is bound to its process for good.

A new service instance (after an agent restart) watches every supervisor still running; exits
that happened while no agent was watching are not replayed as events — the kubelet side relists
at start, as the real kubelet's PLEG does, and finds them in container_status.

Thread rule: everything here runs on the event loop's thread (publish, watch, subscribers).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable

from nodeagent.cri.api import ContainerEvent, ContainerEventType

QUEUE_LIMIT = 10000   # a subscriber that stops reading loses the oldest events, never blocks us


class EventHub:
    def __init__(self):
        self._subscribers: set[asyncio.Queue] = set()
        self._watched: dict[str, int] = {}          # container id → pidfd of its supervisor
        self._loop: asyncio.AbstractEventLoop | None = None

    def publish(self, cid: str, sid: str, kind: ContainerEventType) -> None:
        event = ContainerEvent(cid, sid, kind, time.time())
        for q in list(self._subscribers):
            if q.full():
                q.get_nowait()
            q.put_nowait(event)

    def subscribe(self) -> "Subscription":
        """An async iterator of every event from *now* on (registered at once, not at the first
        `anext`, so that nothing published between the call and the first read is lost)."""
        return Subscription(self)

    def watch(self, cid: str, sid: str, shim: tuple[int, int] | None,
              on_exit: Callable[[], None] | None = None) -> None:
        """Publish STOPPED for `cid` once its supervisor (pid, start time) has exited."""
        from runtime.container.state import process_start_time

        if cid in self._watched or shim is None:
            return
        pid, start = shim
        try:
            fd = os.pidfd_open(pid)
        except (ProcessLookupError, OSError):
            fd = -1
        if fd < 0 or process_start_time(pid) != start:
            if fd >= 0:
                os.close(fd)
            self.publish(cid, sid, ContainerEventType.STOPPED)   # gone already
            return
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._watched[cid] = fd

        def exited() -> None:
            self.unwatch(cid)
            if on_exit is not None:
                on_exit()
            self.publish(cid, sid, ContainerEventType.STOPPED)

        loop.add_reader(fd, exited)

    def unwatch(self, cid: str) -> None:
        fd = self._watched.pop(cid, None)
        if fd is None:
            return
        if self._loop is not None:
            try:
                self._loop.remove_reader(fd)
            except (ValueError, RuntimeError):
                pass
        os.close(fd)

    def close(self) -> None:
        for cid in list(self._watched):
            self.unwatch(cid)


class Subscription:
    """One subscriber's queue. Iterate it; `close()` (or dropping it) unsubscribes."""

    def __init__(self, hub: EventHub):
        self._hub = hub
        self._queue: asyncio.Queue = asyncio.Queue(QUEUE_LIMIT)
        hub._subscribers.add(self._queue)

    def __aiter__(self) -> AsyncIterator[ContainerEvent]:
        return self

    async def __anext__(self) -> ContainerEvent:
        return await self._queue.get()

    def close(self) -> None:
        self._hub._subscribers.discard(self._queue)

    def __del__(self):
        self.close()
