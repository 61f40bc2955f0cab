"""Back-off for restarts and image pulls: client-go's flowcontrol.Backoff, as the kubelet uses it.

Each key (a pod's container, or an image) has a delay that starts at 10 s and doubles on every
failure up to 300 s. The kubelet asks two questions:

    in_backoff_since(key, t)  "it failed at t: is it still too early to try again?"
                              (now - t < the current delay) → CrashLoopBackOff / ImagePullBackOff
    next(key)                 "we are trying again now": double the delay for the next time

A key untouched for twice the maximum (600 s — ten minutes of running without a crash) starts
again from 10 s: a container that crashes once a day is not punished for last week.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

INITIAL = 10.0
MAXIMUM = 300.0


@dataclass
class _Entry:
    delay: float
    last_update: float


class Backoff:
    def __init__(self, initial: float = INITIAL, maximum: float = MAXIMUM,
                 clock: Callable[[], float] = time.time):
        self.initial, self.maximum, self.clock = initial, maximum, clock
        self._entries: dict[str, _Entry] = {}   # owned by the caller's event loop

    def _expired(self, at: float, entry: _Entry) -> bool:
        return at - entry.last_update > 2 * self.maximum

    def delay(self, key: str) -> float:
        e = self._entries.get(key)
        return e.delay if e else 0.0

    def in_backoff_since(self, key: str, since: float) -> bool:
        e = self._entries.get(key)
        if e is None or self._expired(since, e):
            return False
        return self.clock() - since < e.delay

    def in_backoff_since_update(self, key: str) -> bool:
        """Still within the delay counted from the last failure (the image puller's question)."""
        e = self._entries.get(key)
        if e is None or self._expired(self.clock(), e):
            return False
        return self.clock() - e.last_update < e.delay

    def update_time(self, key: str) -> float | None:
        e = self._entries.get(key)
        return e.last_update if e else None

    def retry_at(self, key: str, since: float) -> float:
        """When the back-off that began at `since` ends (a time to wake the pod worker)."""
        return since + self.delay(key)

    def next(self, key: str) -> None:
        now = self.clock()
        e = self._entries.get(key)
        if e is None or self._expired(now, e):
            self._entries[key] = _Entry(self.initial, now)
        else:
            e.delay = min(e.delay * 2, self.maximum)
            e.last_update = now

    def forget(self, prefix: str) -> None:
        """Drop every key of a pod that has gone (keys start with its uid)."""
        for k in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[k]
