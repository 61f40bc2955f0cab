"""The status manager: the only writer of pod status (the kubelet's pkg/kubelet/status).

Pod workers compute a status after each sync (podstatus.py) and hand it here with `set_status`;
they never write to the API themselves. This keeps three promises:

    no lost updates       the newest status per pod is kept until the API has accepted it; a failed
                          write is retried, and a newer status simply replaces an unsent one
    no useless writes     a status equal to the last one the API accepted is not sent again — a
                          node with 110 quiet pods writes nothing
    one source of truth   every 10 s the informer's copy is compared with what we last wrote; if
                          someone else changed it (or a write was lost), ours is written again

Writes are PATCHes of pods/<name>/status (a JSON merge patch: the lists we own — conditions,
containerStatuses — are sent whole) carrying metadata.uid, so a status can never land on a new
pod that reuses the name.

The last step of a pod's life is here too (`delete_pod`): once the worker has stopped and removed
everything, the final DELETE with gracePeriodSeconds=0 and the uid as precondition takes the pod
out of the API — what `kubectl delete` has been waiting for.
"""

from __future__ import annotations

import asyncio
import copy
import logging

from apiclient import PODS, ApiClient, ApiError, Conflict, NotFound

log = logging.getLogger("nodeagent.status")

RECONCILE_EVERY = 10.0
RETRY_DELAY = 1.0
PARALLEL_WRITES = 8


def normalized(value):
    """Drop None, empty dicts and empty lists, so that "unset" compares equal however written."""
    if isinstance(value, dict):
        out = {k: normalized(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    return value


class StatusManager:
    def __init__(self, api: ApiClient, cached_pod=None):
        self.api = api
        self.cached_pod = cached_pod or (lambda ns, name: None)   # the informer's copy
        # uid → (namespace, name, status): the newest status per pod. Owned by the agent's loop.
        self._latest: dict[str, tuple[str, str, dict]] = {}
        self._written: dict[str, dict] = {}     # uid → the status the API last accepted from us
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self.writes = 0                         # for tests and metrics

    # --- what pod workers call ----------------------------------------------------------------------
    def status(self, uid: str) -> dict | None:
        """The newest status we have for the pod (sent or not): what the next one builds on."""
        got = self._latest.get(uid)
        return got[2] if got else None

    def set_status(self, pod: dict, status: dict) -> None:
        md = pod["metadata"]
        uid = md["uid"]
        self._latest[uid] = (md.get("namespace", "default"), md["name"], status)
        if normalized(status) != normalized(self._written.get(uid)):
            self._dirty.add(uid)
            self._wake.set()

    def forget(self, uid: str) -> None:
        self._latest.pop(uid, None)
        self._written.pop(uid, None)
        self._dirty.discard(uid)

    async def flushed(self, uid: str | None = None, timeout: float = 10.0) -> None:
        """Wait (a while at most) until the pod's, or every, pending status has been written."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while ((uid in self._dirty) if uid else self._dirty) and loop.time() < deadline:
            await asyncio.sleep(0.02)

    async def delete_pod(self, pod: dict) -> None:
        """The final DELETE (grace 0, uid precondition), after the status has been written."""
        md = pod["metadata"]
        await self.flushed(md["uid"])
        try:
            await self.api.delete(PODS, md["name"], md.get("namespace", "default"),
                                  grace_period_seconds=0, uid=md["uid"])
        except (NotFound, Conflict):
            pass        # gone already, or a new pod with the same name: not ours to delete
        self.forget(md["uid"])

    # --- the writer task ----------------------------------------------------------------------------
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_reconcile = loop.time() + RECONCILE_EVERY
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_reconcile - loop.time()))
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            if loop.time() >= next_reconcile:
                self._reconcile()
                next_reconcile = loop.time() + RECONCILE_EVERY
            batch = list(self._dirty)
            sem = asyncio.Semaphore(PARALLEL_WRITES)

            async def one(uid: str) -> None:
                async with sem:
                    await self._write(uid)

            await asyncio.gather(*(one(u) for u in batch))
            if self._dirty - set(batch):
                self._wake.set()               # new ones arrived meanwhile
            elif self._dirty:
                await asyncio.sleep(RETRY_DELAY)   # failed writes: retry after a pause
                self._wake.set()

    async def _write(self, uid: str) -> None:
        got = self._latest.get(uid)
        if got is None:
            self._dirty.discard(uid)
            return
        ns, name, status = got
        body = {"metadata": {"uid": uid}, "status": copy.deepcopy(status)}
        try:
            await self.api.patch(PODS, name, body, ns, type="merge", subresource="status")
        except NotFound:
            self.forget(uid)                   # the pod is gone: nothing to report to
            return
        except ApiError as e:
            log.info("status of pod %s/%s not written (will retry): %s", ns, name, e)
            return
        self.writes += 1
        self._written[uid] = status
        newest = self._latest.get(uid, (0, 0, None))[2]
        if newest is status or normalized(newest) == normalized(status):
            self._dirty.discard(uid)       # (an equal status set while this write was in flight)

    def _reconcile(self) -> None:
        """Mark pods whose status in the API differs from what we wrote (client-go's informer
        copy is the API's, at most a watch event behind)."""
        for uid, written in self._written.items():
            ns, name, _ = self._latest.get(uid, ("", "", None))
            pod = self.cached_pod(ns, name)
            if pod is None or pod["metadata"].get("uid") != uid:
                continue
            have = {k: (pod.get("status") or {}).get(k) for k in written}
            if normalized(have) != normalized(written):
                self._dirty.add(uid)
                self._wake.set()
