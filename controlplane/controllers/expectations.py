"""Expectations: what a controller has asked for and not yet seen in its informer.

A ReplicaSet that wants 3 pods creates 3 and returns. Its pod informer learns of them a little
later; a sync in between would count 0 pods and create 3 more. So before creating, the controller
records "I expect 3 creations for rs x" and the pod informer's ADDED events count them down; until
they reach zero (or 5 minutes pass, in case an event was lost) the controller does not act on its
counts — it only updates status. Deletions are tracked by pod key, so that a pod deleted by someone
else is not mistaken for one of ours (client-go's UIDTrackingControllerExpectations).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

TTL = 300.0  # ExpectationsTimeout: after 5 minutes, stop waiting and trust the cache again


@dataclass
class _Expect:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    at: float = field(default_factory=time.monotonic)


class Expectations:
    def __init__(self) -> None:
        self._by_key: dict[str, _Expect] = {}

    def satisfied(self, key: str) -> bool:
        e = self._by_key.get(key)
        if e is None:
            return True
        if e.adds <= 0 and not e.deletes:
            return True
        return time.monotonic() - e.at > TTL

    def expect_creations(self, key: str, n: int) -> None:
        self._by_key[key] = _Expect(adds=n)

    def expect_deletions(self, key: str, pod_keys: list[str]) -> None:
        self._by_key[key] = _Expect(deletes=set(pod_keys))

    def creation_observed(self, key: str) -> None:
        e = self._by_key.get(key)
        if e is not None:
            e.adds -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        e = self._by_key.get(key)
        if e is not None:
            e.deletes.discard(pod_key)

    def delete(self, key: str) -> None:
        self._by_key.pop(key, None)
