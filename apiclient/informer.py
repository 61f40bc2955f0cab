"""An informer: a local, always-current copy of a set of objects, kept by list + watch.

The loop every Kubernetes controller runs (client-go's reflector + store):

    1. LIST everything (page by page) → the cache; note the list's resourceVersion R.
    2. WATCH from R. Apply each event to the cache and tell the handlers. BOOKMARK events only
       move R forward, so a reconnect resumes from a recent point.
    3. The stream ends (server timeout, network blip): watch again from the last R.
    4. The server answers 410 Expired (R fell out of its event window): go back to 1; the new
       list is diffed against the cache, so handlers still see every add, update and delete.

With `watch_list=True` (the default, as client-go's reflector since 1.35) steps 1 and 2 are one
request: a watch with `sendInitialEvents=true` streams the current objects as ADDED events and
marks the end of that snapshot with a BOOKMARK annotated `k8s.io/initial-events-end: "true"`;
the informer diffs the snapshot against its cache at that bookmark and goes on watching on the
same connection. A server that refuses it (4xx) gets the classic list + watch from then on.

Handlers are plain callables `(type, obj, old)` — type is "ADDED", "MODIFIED" or "DELETED" — and
may be coroutines. The cache belongs to the informer's task; read it, never change it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Awaitable, Callable

from apiclient.client import ApiClient, Resource
from apiclient.errors import ApiError, BadRequest, Expired, Invalid

log = logging.getLogger("nodeagent.apiclient.informer")

Handler = Callable[[str, dict, "dict | None"], "Awaitable[None] | None"]


def _key(obj: dict) -> tuple[str, str]:
    md = obj.get("metadata") or {}
    return md.get("namespace", ""), md.get("name", "")


class Informer:
    def __init__(self, api: ApiClient, res: Resource, namespace: str | None = None, *,
                 label_selector: str | None = None, field_selector: str | None = None,
                 watch_timeout: int = 300, retry_delay: float = 1.0, watch_list: bool = True):
        self.api, self.res, self.namespace = api, res, namespace
        self.selectors = {"label_selector": label_selector, "field_selector": field_selector}
        self.watch_timeout, self.retry_delay = watch_timeout, retry_delay
        self.cache: dict[tuple[str, str], dict] = {}  # owned by run()
        self.resource_version = ""
        self.relists = 0  # how many times a 410 forced a new list (for tests and metrics)
        self.watch_list = watch_list  # turned off if the server refuses it
        self._handlers: list[Handler] = []
        self._synced = asyncio.Event()

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    async def wait_synced(self) -> None:
        await self._synced.wait()

    def get(self, name: str, namespace: str = "") -> dict | None:
        return self.cache.get((namespace, name))

    async def _notify(self, type_: str, obj: dict, old: dict | None) -> None:
        for h in self._handlers:
            r = h(type_, obj, old)
            if inspect.isawaitable(r):
                await r

    async def _relist(self) -> None:
        items, rv = await self.api.list_all(self.res, self.namespace, **self.selectors)
        await self._replace(items, rv)

    async def _replace(self, items: list[dict], rv: str) -> None:
        """Make the cache equal to a fresh snapshot, telling handlers what changed."""
        fresh = {_key(o): o for o in items}
        for k, old in list(self.cache.items()):
            if k not in fresh:
                del self.cache[k]
                await self._notify("DELETED", old, old)
        for k, obj in fresh.items():
            old = self.cache.get(k)
            self.cache[k] = obj
            if old is None:
                await self._notify("ADDED", obj, None)
            elif old["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                await self._notify("MODIFIED", obj, old)
        self.resource_version = rv
        self._synced.set()

    async def run(self) -> None:
        """Run until cancelled."""
        need_list = True
        while True:
            try:
                snapshot: list[dict] | None = None
                if need_list and self.watch_list:
                    snapshot = []  # filled from the stream's initial ADDED events
                elif need_list:
                    await self._relist()
                need_list = False
                start = None if snapshot is not None else self.resource_version
                async for ev in self.api.watch(self.res, self.namespace, resource_version=start,
                                               send_initial_events=snapshot is not None,
                                               timeout_seconds=self.watch_timeout, **self.selectors):
                    self.resource_version = ev.resource_version or self.resource_version
                    if snapshot is not None:
                        if ev.type == "BOOKMARK" and ((ev.object.get("metadata") or {}).get(
                                "annotations") or {}).get("k8s.io/initial-events-end") == "true":
                            await self._replace(snapshot, ev.resource_version)
                            snapshot = None
                        elif ev.type == "ADDED":
                            snapshot.append(ev.object)
                        continue
                    if ev.type == "BOOKMARK":
                        continue
                    k = _key(ev.object)
                    old = self.cache.get(k)
                    if ev.type == "DELETED":
                        self.cache.pop(k, None)
                    else:
                        self.cache[k] = ev.object
                    await self._notify(ev.type, ev.object, old)
                if snapshot is not None:
                    need_list = True  # the stream ended before the snapshot was complete
            except Expired:
                self.relists += 1
                need_list = True  # fell out of the server's window: start over from a list
            except (BadRequest, Invalid) as e:
                if not self.watch_list:
                    raise
                log.info("%s informer: watch-list refused (%s); using list + watch", self.res.plural, e)
                self.watch_list = False
                need_list = True
            except ApiError as e:
                log.warning("%s informer: %s; retrying in %.1fs", self.res.plural, e, self.retry_delay)
                await asyncio.sleep(self.retry_delay)
