"""The watch cache: the current objects and a window of recent events, in memory.

Like the kube-apiserver's cacher, it is fed by ONE subscription to the store and serves every
reader from memory:

- `get` / `list` answer from a dict of the current objects (decoded once, when they changed);
- `watch(prefix, after)` replays the window's events newer than `after`, then streams new ones.
  If `after` is older than the window, the client missed events we no longer have: Compacted,
  which the API server turns into "410 Gone: too old resource version" so the client re-lists.

Fan-out: each watcher owns an asyncio.Queue; a committed event is put on the queue of every
watcher whose prefix matches (a dict lookup and a put — cheap for hundreds of watchers). Selector
filtering and encoding happen in the watcher's own task, so a write never waits for watchers. A
watcher that falls `max_backlog` events behind is closed (the client re-watches), so one stuck
client cannot make the server hold events forever.

Values are decoded by the `decode` function the owner passes (the API server's JSON codec), so
this module stays free of Kubernetes. Decoded objects are shared by every reader and must not be
mutated; `Entry.encoded` memoizes the owner's serialization so 100 watchers encode an event once.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from controlplane.storage.interface import Compacted, Event, KeyValue, Storage


@dataclass(eq=False)
class Entry:
    kv: KeyValue
    obj: Any  # decoded by the owner's codec; shared, never mutated
    encoded: bytes | None = None  # memo for the owner's serializer

    @property
    def key(self) -> str:
        return self.kv.key

    @property
    def revision(self) -> int:
        return self.kv.mod_rev


@dataclass(frozen=True)
class CacheEvent:
    type: str  # ADDED | MODIFIED | DELETED
    entry: Entry
    prev: Entry | None

    @property
    def revision(self) -> int:
        return self.entry.revision


@dataclass(eq=False)
class Watcher:
    prefix: str
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    closed: bool = False  # set when the cache dropped it (too slow) or it was stopped

    async def next(self) -> CacheEvent | None:
        """The next event, or None once the cache has closed this watcher."""
        if self.closed and self.queue.empty():
            return None
        ev = await self.queue.get()
        return ev


def _bucket(key: str) -> str:
    """The resource part of a key: "/registry/pods/ns/name" → "/registry/pods/"."""
    parts = key.split("/", 3)
    return "/".join(parts[:3]) + "/" if len(parts) > 3 else key


class WatchCache:
    def __init__(self, storage: Storage, decode: Callable[[KeyValue], Any],
                 window: int = 10000, max_backlog: int = 20000):
        self.storage = storage
        self._decode = decode
        self._window: deque[CacheEvent] = deque(maxlen=window)
        self._max_backlog = max_backlog
        self._objects: dict[str, dict[str, Entry]] = {}  # bucket → key → entry
        self._sorted: dict[str, list[str] | None] = {}  # bucket → sorted keys (lazily rebuilt)
        self._watchers: dict[str, set[Watcher]] = {}  # bucket → watchers
        self._revision = 0
        self._oldest = 0  # every event with revision > _oldest is in the window
        self._waiters: list[tuple[int, asyncio.Future]] = []

    async def start(self, root: str = "/") -> None:
        """Load the store's state and recent history, then follow it."""
        self.storage.subscribe(self._on_event)  # before loading: nothing committed is missed
        items, rev, _ = await self.storage.list(root)
        for kv in items:
            self._put(Entry(kv, self._decode(kv)))
        self._revision = self._oldest = rev
        # Recent history, so clients that watched the previous server process can resume.
        since = max(rev - (self._window.maxlen or 0), getattr(self.storage, "compacted_revision", 0))
        try:
            history = [e for e in await self.storage.events_since(since) if e.revision <= rev]
        except Compacted:
            history = []
        if history:
            self._oldest = history[0].revision - 1
            for e in history:
                self._window.append(self._to_cache_event(e))

    @property
    def revision(self) -> int:
        return self._revision

    def _to_cache_event(self, e: Event) -> CacheEvent:
        entry = Entry(e.kv, self._decode(e.kv))
        prev = Entry(e.prev, self._decode(e.prev)) if e.prev is not None else None
        if e.type == "DELETE":
            return CacheEvent("DELETED", entry, prev)
        return CacheEvent("MODIFIED" if prev is not None else "ADDED", entry, prev)

    def _put(self, entry: Entry) -> None:
        b = _bucket(entry.key)
        objs = self._objects.setdefault(b, {})
        if entry.key not in objs:
            self._sorted[b] = None
        objs[entry.key] = entry

    def _on_event(self, e: Event) -> None:
        if e.revision <= self._revision:
            return  # already part of the initial load
        b = _bucket(e.kv.key)
        prev = self._objects.get(b, {}).get(e.kv.key)
        entry = Entry(e.kv, self._decode(e.kv))
        if e.type == "DELETE":
            self._objects.get(b, {}).pop(e.kv.key, None)
            self._sorted[b] = None
            ev = CacheEvent("DELETED", entry, prev)
        else:
            self._put(entry)
            ev = CacheEvent("MODIFIED" if prev is not None else "ADDED", entry, prev)
        if len(self._window) == self._window.maxlen:
            self._oldest = self._window[0].revision
        self._window.append(ev)
        self._revision = e.revision
        for w in list(self._watchers.get(b, ())):
            if e.kv.key.startswith(w.prefix):
                if w.queue.qsize() >= self._max_backlog:
                    self._drop(w)
                else:
                    w.queue.put_nowait(ev)
        while self._waiters and self._waiters[0][0] <= self._revision:
            _, fut = self._waiters.pop(0)
            if not fut.done():
                fut.set_result(None)

    async def wait_for(self, revision: int) -> None:
        """Return once the cache has seen `revision` (for reads that must follow a write)."""
        if revision <= self._revision:
            return
        fut = asyncio.get_running_loop().create_future()
        bisect.insort(self._waiters, (revision, fut), key=lambda w: w[0])
        await fut

    # ---- reads ----

    def get(self, key: str) -> Entry | None:
        return self._objects.get(_bucket(key), {}).get(key)

    def list(self, prefix: str, start_after: str = "", limit: int = 0) -> tuple[list[Entry], bool]:
        """Current entries under prefix, sorted by key; (entries, more)."""
        b = _bucket(prefix) if prefix.count("/") >= 3 else prefix
        objs = self._objects.get(b, {})
        keys = self._sorted.get(b)
        if keys is None:
            keys = self._sorted[b] = sorted(objs)
        lo = bisect.bisect_right(keys, start_after) if start_after else bisect.bisect_left(keys, prefix)
        out: list[Entry] = []
        for i in range(lo, len(keys)):
            k = keys[i]
            if not k.startswith(prefix):
                break
            if limit and len(out) == limit:
                return out, True
            out.append(objs[k])
        return out, False

    # ---- watches ----

    def watch(self, prefix: str, after: int) -> Watcher:
        """Events under prefix with revision > after; Compacted if the window lacks some."""
        if after < self._oldest:
            raise Compacted(after, self._oldest)
        w = Watcher(prefix)
        if after < self._revision:
            for ev in self._window:  # the window is short; a scan is cheaper than an index
                if ev.revision > after and ev.entry.key.startswith(prefix):
                    w.queue.put_nowait(ev)
        self._watchers.setdefault(_bucket(prefix), set()).add(w)
        return w

    def stop(self, w: Watcher) -> None:
        self._watchers.get(_bucket(w.prefix), set()).discard(w)
        w.closed = True

    def _drop(self, w: Watcher) -> None:
        self.stop(w)
        w.queue.put_nowait(None)  # wakes the watcher's task, which then ends the stream

    def close_prefix(self, prefix: str) -> None:
        """End every watch under prefix (its resource went away: a deleted CRD's objects)."""
        for w in list(self._watchers.get(_bucket(prefix), ())):
            if w.prefix.startswith(prefix):
                self._drop(w)

    def close(self) -> None:
        """End every watch (server shutdown): each stream finishes, clients re-watch elsewhere."""
        for ws in list(self._watchers.values()):
            for w in list(ws):
                self._drop(w)
