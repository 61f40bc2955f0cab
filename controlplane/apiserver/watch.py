"""Watch streams: `GET ...?watch=true` answered with one JSON event per line, forever.

    {"type":"ADDED","object":{...}}
    {"type":"MODIFIED","object":{...}}
    {"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"57"}}}

Where a watch starts (the `resourceVersion` parameter):
- unset or "0": first a synthetic ADDED for every current object, then changes;
- "N": every change after revision N, replayed from the watch cache's window. If N is older than
  the window the events are gone: the stream carries one ERROR event holding a 410 Status
  (reason Expired) and ends; the client must list again and watch from the list's revision.

Watch-list (`sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true`),
which client-go's reflector — so kubectl wait, and informers — tries first since 1.35: the
initial state arrives as ADDED events and is closed by a BOOKMARK annotated
`k8s.io/initial-events-end: "true"` whose resourceVersion is the snapshot's revision. A client
that never gets that bookmark waits forever, so an unsupported combination is refused with a
422 up front, never ignored.

Selectors are applied per event with the object's *previous* state too, as upstream: an object that
stops matching is sent as DELETED, one that starts matching as ADDED. Bookmarks (when allowed) are
sent every few seconds of quiet so a client can resume from a recent revision.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Awaitable, Callable

from aiohttp import web

from controlplane.apiserver import conversion, tables
from controlplane.apiserver.errors import APIError, gone
from controlplane.apiserver.objects import ObjectStore
from controlplane.apiserver.resources import ResourceType
from controlplane.apiserver.selectors import FieldSelector, LabelSelector
from controlplane.storage import Compacted
from controlplane.storage.watchcache import CacheEvent, Entry

BOOKMARK_INTERVAL = 5.0  # seconds of quiet before a progress bookmark
WRITE_BATCH = 500  # events joined into one write at most


@dataclass(frozen=True)
class WatchRequest:
    rt: ResourceType
    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    resource_version: str
    send_initial_events: bool
    bookmarks: bool
    timeout: float
    table: bool = False


def _encode_object(entry: Entry) -> bytes:
    if entry.encoded is None:  # once per object version, shared by every watcher
        entry.encoded = json.dumps(entry.obj, separators=(",", ":")).encode()
    return entry.encoded


class WatchStream:
    def __init__(self, store: ObjectStore, req: WatchRequest):
        self.store, self.req = store, req
        self._table_headers = True

    def _matches(self, obj: dict | None) -> bool:
        if obj is None:
            return False
        md = obj.get("metadata") or {}
        return self.req.labels.matches(md.get("labels")) and self.req.fields.matches(obj)

    def _line(self, type_: str, entry: Entry) -> bytes:
        if self.req.table and type_ != "BOOKMARK" and type_ != "ERROR":
            t = tables.for_resource(self.req.rt, [entry.obj], {"resourceVersion": str(entry.revision)},
                             headers=self._table_headers)
            self._table_headers = False  # headers only on the first event, as upstream
            return b'{"type":"' + type_.encode() + b'","object":' + \
                json.dumps(t, separators=(",", ":")).encode() + b"}\n"
        if conversion.converts(self.req.rt):  # a view (events.k8s.io, custom resources): its shape
            body = conversion.encoded_view(self.req.rt, entry)
        else:
            body = _encode_object(entry)
        return b'{"type":"' + type_.encode() + b'","object":' + body + b"}\n"

    def _bookmark(self, revision: int, initial_end: bool = False) -> bytes:
        md: dict = {"resourceVersion": str(revision)}
        if initial_end:
            md["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": self.req.rt.kind, "apiVersion": self.req.rt.api_version, "metadata": md}
        return json.dumps({"type": "BOOKMARK", "object": obj}, separators=(",", ":")).encode() + b"\n"

    def translate(self, ev: CacheEvent) -> bytes | None:
        """The line this watcher sends for a cache event, or None when it does not concern it."""
        now = self._matches(ev.entry.obj) if ev.type != "DELETED" else False
        before = self._matches(ev.prev.obj) if ev.prev is not None else False
        if ev.type == "DELETED":
            return self._line("DELETED", ev.entry) if before or self._matches(ev.entry.obj) else None
        if now and before:
            return self._line("MODIFIED", ev.entry)
        if now:
            return self._line("ADDED", ev.entry)
        if before:
            return self._line("DELETED", ev.entry)
        return None

    async def _wait_until(self, rv: str) -> None:
        """A client may know a newer revision than this server has applied yet (another server
        answered it): wait a little, then say so with 504, as upstream does."""
        try:
            want = int(rv)
        except ValueError:
            raise APIError(400, "BadRequest", f'invalid resource version "{rv}"') from None
        cache = self.store.cache
        if want > cache.revision:
            try:
                await asyncio.wait_for(cache.wait_for(want), 3)
            except asyncio.TimeoutError:
                raise APIError(504, "Timeout", f"Too large resource version: {want}, current: "
                               f"{cache.revision}") from None

    async def serve(self, request: web.Request,
                    prepare: Callable[[], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        req, cache = self.req, self.store.cache
        prefix = req.rt.key(req.namespace)
        initial: list[Entry] = []
        rv = req.resource_version
        if req.send_initial_events or rv in ("", "0"):
            if req.send_initial_events and rv not in ("", "0"):
                await self._wait_until(rv)  # NotOlderThan: the snapshot must include rv
            start = cache.revision
            initial = [e for e in cache.list(prefix)[0] if self._matches(e.obj)]
            watcher = cache.watch(prefix, start)
        else:
            try:
                start = int(rv)
            except ValueError:
                raise APIError(400, "BadRequest", f'invalid resource version "{rv}"') from None
            await self._wait_until(rv)
            try:
                watcher = cache.watch(prefix, start)
            except Compacted as e:
                watcher = None
                expired = gone(f"too old resource version: {start} ({e.compacted + 1})")
        resp = await prepare()
        try:
            if watcher is None:  # the kube-apiserver reports this inside the stream, as an ERROR
                await resp.write(json.dumps({"type": "ERROR", "object": expired.status()}).encode() + b"\n")
                return resp
            for i in range(0, len(initial), WRITE_BATCH):
                await resp.write(b"".join(self._line("ADDED", e) for e in initial[i:i + WRITE_BATCH]))
            if req.send_initial_events:
                await resp.write(self._bookmark(start, initial_end=True))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + req.timeout
            last = start
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    ev = await asyncio.wait_for(watcher.next(), min(left, BOOKMARK_INTERVAL))
                except asyncio.TimeoutError:
                    if req.bookmarks and cache.revision > last:
                        last = cache.revision
                        await resp.write(self._bookmark(last))
                    continue
                # Everything already queued goes out in one write: under a burst of writes, one
                # write (and one wait_for task) per event per watcher was the server's watch cost.
                lines, ended = [], False
                while True:
                    if ev is None:
                        ended = True  # the cache dropped us (too far behind): the client re-watches
                        break
                    last = ev.revision
                    line = self.translate(ev)
                    if line is not None:
                        lines.append(line)
                    if len(lines) >= WRITE_BATCH:
                        break
                    try:
                        ev = watcher.queue.get_nowait()
                    except asyncio.QueueEmpty:
                        break
                if lines:
                    await resp.write(b"".join(lines))
                if ended:
                    break
        except ConnectionResetError:
            pass  # the client went away
        finally:
            if watcher is not None:
                cache.stop(watcher)
        return resp
