"""TTL after finished: delete a Job `ttlSecondsAfterFinished` seconds after it completed or failed.

The finish time is the time of its Complete or Failed condition. When it expires the Job is read
again from the API (the TTL may have been changed or removed meanwhile) and deleted with
propagationPolicy Foreground and a uid precondition — its pods go first (garbage collector), then
the Job, and a new Job of the same name is never touched.
"""

from __future__ import annotations

import time

from apiclient import Conflict, NotFound

from controlplane.controllers.base import Context, Controller
from controlplane.controllers.meta import JOBS, parse_time, split_key


def expires_at(job: dict) -> float | None:
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    if ttl is None or (job["metadata"].get("deletionTimestamp")):
        return None
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            t = parse_time(c.get("lastTransitionTime")) or parse_time((job.get("status") or {}).get("completionTime"))
            if t is not None:
                return t + ttl
    return None


class TTLAfterFinishedController(Controller):
    name = "ttl-after-finished"
    requires = (("batch", "jobs"),)

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.jobs = ctx.informers.get(JOBS)
        self.jobs.add_handler(lambda t, job, old: t != "DELETED" and expires_at(job) is not None
                              and self.enqueue(job))

    async def sync(self, key: str) -> None:
        job = self.jobs.get_key(key)
        if job is None or expires_at(job) is None:
            return
        left = expires_at(job) - time.time()
        if left > 0:
            self.queue.add_after(key, left)
            return
        ns, name = split_key(key)
        try:
            fresh = await self.api.get(JOBS, name, ns)
        except NotFound:
            return
        at = expires_at(fresh)
        if at is None or fresh["metadata"]["uid"] != job["metadata"]["uid"]:
            return
        if at > time.time():
            self.queue.add_after(key, at - time.time())
            return
        try:
            await self.api.request("DELETE", JOBS.path(ns, name), None, {
                "kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground",
                "preconditions": {"uid": fresh["metadata"]["uid"],
                                  "resourceVersion": fresh["metadata"]["resourceVersion"]}})
            self.log.info("deleted finished job %s (ttlSecondsAfterFinished)", key)
        except (NotFound, Conflict):
            pass
