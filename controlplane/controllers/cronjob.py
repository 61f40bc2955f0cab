"""The CronJob controller: create a Job at each scheduled time (upstream's cronjob_controllerv2).

One sync of a CronJob:
  1. Its Jobs (controller ownerReference): finished ones leave status.active (a Complete one sets
     lastSuccessfulTime); gone ones too.
  2. Suspended or being deleted: nothing more.
  3. The most recent scheduled time after lastScheduleTime (or the CronJob's creation) that is not
     in the future (cron.py; more than 100 missed is reported as TooManyMissedTimes). None: come
     back at the next one. Older than startingDeadlineSeconds: MissSchedule, wait for the next.
  4. concurrencyPolicy: Forbid skips while a Job is active; Replace deletes the active ones first.
  5. Create the Job `<cronjob>-<scheduled time in minutes since the epoch>` from jobTemplate, with
     the annotation batch.kubernetes.io/cronjob-scheduled-timestamp. The name is a function of
     the time, so a second controller (or a restart) that tries the same time gets AlreadyExists
     and does not run it twice.
  6. Record it in status.active and lastScheduleTime; delete finished Jobs beyond
     successfulJobsHistoryLimit / failedJobsHistoryLimit, oldest first; come back at the next time.
"""

from __future__ import annotations

import copy
import time
from datetime import datetime, timedelta, timezone

from apiclient import AlreadyExists, Conflict, NotFound

from controlplane.controllers.base import Context, Controller
from controlplane.controllers.cron import CronError, parse
from controlplane.controllers.meta import (
    CRONJOBS, JOBS, controller_ref, is_deleting, owner_ref, parse_time)

SCHEDULED = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100


def job_state(job: dict) -> str | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return c["type"]
    return None


def rfc3339(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class CronJobController(Controller):
    name = "cronjob"
    requires = (("batch", "cronjobs"), ("batch", "jobs"))

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.cronjobs = ctx.informers.get(CRONJOBS)
        self.jobs = ctx.informers.get(JOBS)
        self.cronjobs.add_handler(self.on_change)
        self.jobs.add_handler(self._job_event)

    def _job_event(self, type_: str, job: dict, old: dict | None) -> None:
        ref = controller_ref(job)
        if ref and ref.get("kind") == "CronJob":
            self.queue.add(f"{job['metadata']['namespace']}/{ref.get('name')}")

    def owned_jobs(self, cj: dict) -> list[dict]:
        uid = cj["metadata"]["uid"]
        return [j for j in self.jobs.list(cj["metadata"]["namespace"]) if (controller_ref(j) or {}).get("uid") == uid]

    async def put_status(self, cj: dict, st: dict) -> dict:
        if st == (cj.get("status") or {}):
            return cj
        return await self.api.update_status(CRONJOBS, {**cj, "status": st}, cj["metadata"]["namespace"])

    async def sync(self, key: str) -> None:
        cj = self.cronjobs.get_key(key)
        if cj is None:
            return
        cj = copy.deepcopy(cj)
        spec = cj["spec"]
        jobs = self.owned_jobs(cj)
        by_uid = {j["metadata"]["uid"]: j for j in jobs}
        st = copy.deepcopy(cj.get("status") or {})
        active = []
        for ref in st.get("active") or []:
            j = by_uid.get(ref.get("uid"))
            if j is None:
                continue  # gone (deleted by someone, or by history cleanup)
            state = job_state(j)
            if state is None:
                active.append(ref)
                continue
            if state == "Complete":
                done_at = (j.get("status") or {}).get("completionTime")
                if done_at and (not st.get("lastSuccessfulTime") or done_at > st["lastSuccessfulTime"]):
                    st["lastSuccessfulTime"] = done_at
            self.events.emit(cj, "Normal", "SawCompletedJob",
                             f"Saw completed job: {j['metadata']['name']}, condition: {state}")
        for j in jobs:  # running Jobs we created but did not record (a crash between two writes)
            if job_state(j) is None and j["metadata"]["uid"] not in {r.get("uid") for r in active}:
                active.append(self.ref(j))
        if active:
            st["active"] = active
        else:
            st.pop("active", None)
        cj = await self.put_status(cj, st)
        await self.cleanup_history(cj, jobs)
        if spec.get("suspend") or is_deleting(cj):
            return
        try:
            sched = parse(spec["schedule"], spec.get("timeZone"))
        except CronError as e:
            self.events.emit(cj, "Warning", "UnparseableSchedule", f"unparseable schedule: {spec['schedule']}: {e}")
            return
        now = datetime.now(timezone.utc)
        earliest = parse_time(st.get("lastScheduleTime")) or parse_time(cj["metadata"].get("creationTimestamp"))
        t = datetime.fromtimestamp(earliest or time.time(), timezone.utc)
        due, missed = None, 0
        while True:
            n = sched.next(t)
            if n is None or n > now:
                nxt = n
                break
            due, t = n, n
            missed += 1
            if missed == MAX_MISSED + 1:  # far behind: skip to the last day, only the latest counts
                t = max(t, now - timedelta(days=1))
        if missed > MAX_MISSED:
            self.events.emit(cj, "Warning", "TooManyMissedTimes",
                             f"too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds "
                             "or check clock skew")
        if nxt is not None:
            self.queue.add_after(key, max(0.1, (nxt - now).total_seconds() + 0.1))
        if due is None:
            return
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and (now - due).total_seconds() > deadline:
            self.events.emit(cj, "Warning", "MissSchedule", f"Missed scheduled time to start a job: {rfc3339(due)}")
            return
        policy = spec.get("concurrencyPolicy", "Allow")
        if policy == "Forbid" and active:
            self.events.emit(cj, "Normal", "JobAlreadyActive", "Not starting job because prior execution is running "
                             "and concurrency policy is Forbid")
            return
        if policy == "Replace":
            for ref in list(active):
                await self.delete_job(cj, ref.get("name"), ref.get("uid"))
                self.events.emit(cj, "Normal", "SuccessfulDelete", f"Deleted job {ref.get('name')}")
            active = []
        job = self.job_for(cj, due, sched.tz)
        try:
            created = await self.api.create(JOBS, job, cj["metadata"]["namespace"])
            self.events.emit(cj, "Normal", "SuccessfulCreate", f"Created job {created['metadata']['name']}")
        except AlreadyExists:
            created = self.jobs.get(cj["metadata"]["namespace"], job["metadata"]["name"])
            if created is None:
                created = await self.api.get(JOBS, job["metadata"]["name"], cj["metadata"]["namespace"])
            if (controller_ref(created) or {}).get("uid") != cj["metadata"]["uid"]:
                raise Conflict(409, "Conflict", f"job {job['metadata']['name']} exists and is not ours")
        st = copy.deepcopy(cj.get("status") or {})
        refs = [r for r in active if r.get("uid") != created["metadata"]["uid"]]
        if job_state(created) is None:
            refs.append(self.ref(created))
        if refs:
            st["active"] = refs
        st["lastScheduleTime"] = rfc3339(due)
        await self.put_status(cj, st)

    @staticmethod
    def ref(job: dict) -> dict:
        md = job["metadata"]
        return {"apiVersion": "batch/v1", "kind": "Job", "name": md["name"], "namespace": md["namespace"],
                "uid": md["uid"], "resourceVersion": md.get("resourceVersion")}

    def job_for(self, cj: dict, due: datetime, tz) -> dict:
        tmpl = copy.deepcopy(cj["spec"].get("jobTemplate") or {})
        tmd = tmpl.get("metadata") or {}
        md = {"name": f"{cj['metadata']['name']}-{int(due.timestamp()) // 60}",
              "namespace": cj["metadata"]["namespace"], "ownerReferences": [owner_ref(cj)],
              "labels": dict(tmd.get("labels") or {}),
              "annotations": {**(tmd.get("annotations") or {}),
                              SCHEDULED: due.astimezone(tz).isoformat().replace("+00:00", "Z")}}
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": md, "spec": tmpl.get("spec") or {}}

    async def delete_job(self, cj: dict, name: str, uid: str | None) -> None:
        try:
            await self.api.request("DELETE", JOBS.path(cj["metadata"]["namespace"], name), None, {
                "kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background",
                **({"preconditions": {"uid": uid}} if uid else {})})
        except (NotFound, Conflict):
            pass

    async def cleanup_history(self, cj: dict, jobs: list[dict]) -> None:
        spec = cj["spec"]
        for state, limit in (("Complete", spec.get("successfulJobsHistoryLimit", 3)),
                             ("Failed", spec.get("failedJobsHistoryLimit", 1))):
            if limit is None:
                continue
            done = sorted((j for j in jobs if job_state(j) == state and not is_deleting(j)),
                          key=lambda j: ((j.get("status") or {}).get("startTime") or
                                         j["metadata"].get("creationTimestamp") or "", j["metadata"]["name"]))
            for j in done[:max(0, len(done) - limit)]:
                await self.delete_job(cj, j["metadata"]["name"], j["metadata"]["uid"])
                self.events.emit(cj, "Normal", "SuccessfulDelete", f"Deleted job {j['metadata']['name']}")
