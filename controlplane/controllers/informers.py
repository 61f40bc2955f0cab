"""Shared informers: one list+watch per resource for all controllers, with two indexes.

Sixteen controllers each watching pods would be sixteen copies of every pod and sixteen watch
streams; client-go's SharedInformerFactory gives every controller the same informer instead, and
so do we. Controllers register their handlers while they are built (before `start()`), so each of
them sees the initial list as ADDED events.

Each shared informer keeps two indexes next to the informer's cache (client-go's Indexers):

    by namespace       namespace → {name: obj}      "the pods in ns x" without scanning all pods
    by owner uid       owner uid → {(ns, name)}     "the pods a ReplicaSet owns", "dependents of x"

The cache and the indexes belong to the informer's task; controllers only read them.
"""

from __future__ import annotations

import asyncio
import logging

from apiclient import ApiClient, Informer, Resource

log = logging.getLogger("nodeagent.controllers.informers")


class SharedInformer:
    def __init__(self, api: ApiClient, res: Resource):
        self.res = res
        self.informer = Informer(api, res)
        self.by_namespace: dict[str, dict[str, dict]] = {}
        self.by_owner: dict[str, set[tuple[str, str]]] = {}
        self.informer.add_handler(self._index)

    def add_handler(self, handler) -> None:
        self.informer.add_handler(handler)

    def _index(self, type_: str, obj: dict, old: dict | None) -> None:
        md = obj.get("metadata") or {}
        ns, name = md.get("namespace", ""), md.get("name", "")
        if old is not None:
            for ref in (old.get("metadata") or {}).get("ownerReferences") or []:
                s = self.by_owner.get(ref.get("uid", ""))
                if s is not None:
                    s.discard((ns, name))
                    if not s:
                        del self.by_owner[ref.get("uid", "")]
        if type_ == "DELETED":
            d = self.by_namespace.get(ns)
            if d is not None:
                d.pop(name, None)
                if not d:
                    del self.by_namespace[ns]
            return
        self.by_namespace.setdefault(ns, {})[name] = obj
        for ref in md.get("ownerReferences") or []:
            self.by_owner.setdefault(ref.get("uid", ""), set()).add((ns, name))

    # ---- reads ----

    def get(self, namespace: str, name: str) -> dict | None:
        return self.informer.cache.get((namespace, name))

    def get_key(self, key: str) -> dict | None:
        ns, _, name = key.rpartition("/")
        return self.informer.cache.get((ns, name))

    def list(self, namespace: str | None = None) -> list[dict]:
        if namespace is None:
            return list(self.informer.cache.values())
        return list((self.by_namespace.get(namespace) or {}).values())

    def owned_by(self, uid: str) -> list[dict]:
        out = []
        for k in self.by_owner.get(uid, ()):
            o = self.informer.cache.get(k)
            if o is not None:
                out.append(o)
        return out

    @property
    def synced(self) -> bool:
        return self.informer._synced.is_set()


class SharedInformers:
    """The factory: `get(res)` before `start()`; after it, the same informers, running."""

    def __init__(self, api: ApiClient):
        self.api = api
        self._informers: dict[Resource, SharedInformer] = {}
        self._tasks: list[asyncio.Task] = []
        self._started = False

    def get(self, res: Resource) -> SharedInformer:
        inf = self._informers.get(res)
        if inf is None:
            if self._started:
                raise RuntimeError(f"informer for {res.plural} requested after start")
            inf = self._informers[res] = SharedInformer(self.api, res)
        return inf

    def start(self) -> None:
        self._started = True
        for res, inf in self._informers.items():
            self._tasks.append(asyncio.ensure_future(inf.informer.run()))

    async def wait_synced(self, report_every: float = 30.0) -> None:
        """Until every informer has its first full list. Controllers must not act on a partial
        cache (a ReplicaSet that saw half its pods would create the other half again), so this
        waits as long as it takes — saying which resources it is still waiting for."""
        waiting = asyncio.ensure_future(asyncio.gather(*(inf.informer.wait_synced()
                                                         for inf in self._informers.values())))
        try:
            while True:
                done, _ = await asyncio.wait([waiting], timeout=report_every)
                if done:
                    waiting.result()
                    return
                slow = [r.plural for r, inf in self._informers.items() if not inf.synced]
                log.warning("informers not synced yet: %s", ", ".join(slow))
        finally:
            waiting.cancel()

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
