"""A rate-limited work queue of object keys, with client-go's workqueue semantics.

Every controller is "informer events → keys in a queue → workers that reconcile one key at a time".
The queue's rules are what make that safe and cheap:

  * a key is in the queue at most once: ten events for one Deployment before a worker gets to it
    become one reconcile (the worker reads the latest state from the cache anyway);
  * a key is never processed by two workers at once: an add while the key is being processed is
    remembered (`dirty`) and the key comes back after `done()`;
  * a failed key is re-added after a per-key exponential backoff (5 ms doubling up to 1000 s,
    client-go's DefaultControllerRateLimiter), so one object that always fails is retried ever
    more slowly while every other key keeps being served; `forget()` after a success resets it;
  * `add_after` schedules a key for later (deadlines, minReadySeconds, periodic checks).
"""

from __future__ import annotations

import asyncio
from collections import deque


class ShutDown(Exception):
    """get() on a queue that was shut down."""


class WorkQueue:
    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0):
        self.base_delay, self.max_delay = base_delay, max_delay
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()  # waiting to be processed (in _queue, or back after done())
        self._processing: set[str] = set()
        self._failures: dict[str, int] = {}
        self._waiting: dict[str, asyncio.TimerHandle] = {}  # add_after timers, one per key
        self._getters: deque[asyncio.Future] = deque()  # workers blocked in get()
        self._shutdown = False

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: str) -> None:
        if self._shutdown or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._wake()

    def _wake(self) -> None:
        while self._getters:
            f = self._getters.popleft()
            if not f.done():
                f.set_result(None)
                return

    def add_after(self, key: str, delay: float) -> None:
        """Add the key after `delay` seconds; an earlier pending time for the same key wins."""
        if self._shutdown:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        old = self._waiting.get(key)
        if old is not None:
            if old.when() <= when:
                return
            old.cancel()

        def fire():
            self._waiting.pop(key, None)
            self.add(key)
        self._waiting[key] = loop.call_at(when, fire)

    def add_rate_limited(self, key: str) -> float:
        """Re-add a key that failed, after its backoff; returns the delay chosen."""
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        delay = min(self.max_delay, self.base_delay * (2 ** n))
        self.add_after(key, delay)
        return delay

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def failures(self, key: str) -> int:
        return self._failures.get(key, 0)

    async def get(self) -> str:
        while not self._queue:
            if self._shutdown:
                raise ShutDown()
            f = asyncio.get_running_loop().create_future()
            self._getters.append(f)
            try:
                await f
            except asyncio.CancelledError:
                if f.done() and self._queue:
                    self._wake()  # we were woken for a key: pass the wake-up on
                raise
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake()

    def shutdown(self) -> None:
        self._shutdown = True
        for h in self._waiting.values():
            h.cancel()
        self._waiting.clear()
        while self._getters:
            f = self._getters.popleft()
            if not f.done():
                f.set_result(None)
