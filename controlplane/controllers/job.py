"""The Job controller: run pods until `completions` of them succeed, within the failure limits.

Counting with finalizers (upstream's job tracking, GA since 1.26). Every pod is created with the
finalizer `batch.kubernetes.io/job-tracking`, so it cannot disappear — through pod GC, a node's
deletion, a user — before the Job has counted it. A finished pod is counted in three writes that
survive a crash at any point (the controller restarts from what the API says):

  1. its uid goes into status.uncountedTerminatedPods.{succeeded,failed};
  2. its finalizer is removed (now it may go);
  3. uids in that list whose pods no longer carry the finalizer move into status.succeeded /
     status.failed (and status.completedIndexes for Indexed Jobs).

A pod being deleted before it finished counts as failed (podReplacementPolicy TerminatingOrFailed).

One sync then decides, in upstream's order:
  * podFailurePolicy: the first rule matching a newly failed pod (onExitCodes In/NotIn,
    onPodConditions) says FailJob (the Job fails now), Ignore (not counted) or Count;
  * failed > backoffLimit → Failed (BackoffLimitExceeded); running longer than
    activeDeadlineSeconds since startTime → Failed (DeadlineExceeded); active pods are deleted;
  * success: `completions` pods succeeded (Indexed: every index 0..completions-1 has succeeded;
    no completions: some pod succeeded and none is active) → SuccessCriteriaMet, Complete,
    completionTime;
  * suspend: active pods deleted, Suspended condition;
  * otherwise keep min(parallelism, remaining completions) pods active — Indexed Jobs create the
    lowest missing indexes, each pod knowing its index (annotation and label
    batch.kubernetes.io/job-completion-index, env JOB_COMPLETION_INDEX, hostname <job>-<index>).
    After failures new pods wait an exponential backoff (10 s doubling, at most 6 min).
"""

from __future__ import annotations

import copy
import time

from apiclient import PODS, Conflict, NotFound

from controlplane.controllers.base import Context, Controller
from controlplane.controllers.expectations import Expectations
from controlplane.controllers.meta import (
    JOBS, controller_key, controller_ref, is_deleting, key_of, now_rfc3339, owner_ref, parse_time, pod_from_template,
    pod_ready, selector_matches)
from controlplane.controllers.replicaset import slow_start_batch

TRACKING = "batch.kubernetes.io/job-tracking"
INDEX = "batch.kubernetes.io/job-completion-index"
BACKOFF_MAX = 360.0


def parse_indexes(text: str | None) -> set[int]:
    out: set[int] = set()
    for part in (text or "").split(","):
        if not part:
            continue
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def format_indexes(idx: set[int]) -> str:
    """"0-2,4,7-8", as upstream writes completedIndexes."""
    out, run = [], []
    for i in sorted(idx):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [i]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def pod_index(pod: dict) -> int | None:
    v = (pod["metadata"].get("annotations") or {}).get(INDEX) or (pod["metadata"].get("labels") or {}).get(INDEX)
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def condition_true(job: dict, type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


def finished(job: dict) -> bool:
    return condition_true(job, "Complete") or condition_true(job, "Failed")


def match_failure_rule(job: dict, pod: dict) -> tuple[str, str] | None:
    """(action, message) of the first podFailurePolicy rule matching a failed pod."""
    for i, rule in enumerate(((job["spec"].get("podFailurePolicy") or {}).get("rules")) or []):
        codes = rule.get("onExitCodes")
        if codes:
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                if codes.get("containerName") and cs.get("name") != codes["containerName"]:
                    continue
                code = ((cs.get("state") or {}).get("terminated") or {}).get("exitCode")
                if code is None or code == 0:
                    continue
                hit = code in (codes.get("values") or [])
                if hit == (codes.get("operator") == "In"):
                    return rule.get("action", "Count"), (
                        f"Container {cs.get('name')} for pod {pod['metadata']['namespace']}/"
                        f"{pod['metadata']['name']} failed with exit code {code} matching "
                        f"{rule.get('action')} rule at index {i}")
        for pat in rule.get("onPodConditions") or []:
            for c in (pod.get("status") or {}).get("conditions") or []:
                if c.get("type") == pat.get("type") and c.get("status") == pat.get("status", "True"):
                    return rule.get("action", "Count"), (
                        f"Pod {pod['metadata']['namespace']}/{pod['metadata']['name']} has condition "
                        f"{c['type']} matching {rule.get('action')} rule at index {i}")
    return None


class JobController(Controller):
    name = "job"
    requires = (("batch", "jobs"),)

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.expectations = Expectations()
        self.jobs = ctx.informers.get(JOBS)
        self.pods = ctx.informers.get(PODS)
        self.jobs.add_handler(self._job_event)
        self.pods.add_handler(self._pod_event)
        self.backoff_base = ctx.options.job_backoff_base
        self.last_failure: dict[str, tuple[int, float]] = {}  # job → (failed count, when seen)

    def _job_event(self, type_: str, job: dict, old: dict | None) -> None:
        if type_ == "DELETED":
            self.expectations.delete(key_of(job))
            self.last_failure.pop(key_of(job), None)
        self.enqueue(job)

    def _owner_key(self, pod: dict) -> str | None:
        return controller_key(pod, "Job", self.jobs)

    def _pod_event(self, type_: str, pod: dict, old: dict | None) -> None:
        key = self._owner_key(pod)
        if key is None:
            return
        if type_ == "ADDED":
            self.expectations.creation_observed(key)
        if type_ == "DELETED" or is_deleting(pod):
            self.expectations.deletion_observed(key, key_of(pod))
        self.queue.add(key)

    # ---- writes ----

    async def put_status(self, job: dict, status: dict) -> dict:
        """Write status computed from `job` at its resourceVersion; a 409 means our cache was
        behind (another status is newer) and the sync is retried — never written over it."""
        return await self.api.update_status(JOBS, {**job, "status": status}, job["metadata"]["namespace"])

    async def drop_finalizer(self, pod: dict) -> bool:
        md = pod["metadata"]
        fins = [f for f in md.get("finalizers") or [] if f != TRACKING]
        try:
            await self.api.patch(PODS, md["name"], {"metadata": {"finalizers": fins or None,
                                                                 "resourceVersion": md["resourceVersion"]}},
                                 md["namespace"])
            return True
        except NotFound:
            return True
        except Conflict:
            return False

    def new_pod(self, job: dict, index: int | None) -> dict:
        template = copy.deepcopy(job["spec"]["template"])
        name = job["metadata"]["name"]
        prefix = f"{name}-"
        if index is not None:
            md = template.setdefault("metadata", {})
            md.setdefault("annotations", {})[INDEX] = str(index)
            md.setdefault("labels", {})[INDEX] = str(index)
            spec = template.setdefault("spec", {})
            spec.setdefault("hostname", f"{name}-{index}")
            for c in spec.get("containers") or []:
                env = c.setdefault("env", [])
                if not any(e.get("name") == "JOB_COMPLETION_INDEX" for e in env):
                    env.append({"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                        "apiVersion": "v1", "fieldPath": f"metadata.labels['{INDEX}']"}}})
            prefix = f"{name}-{index}-"
        pod = pod_from_template(template, job, prefix)
        pod["metadata"]["finalizers"] = list(pod["metadata"].get("finalizers") or []) + [TRACKING]
        return pod

    # ---- sync ----

    async def claim(self, job: dict) -> list[dict]:
        md = job["metadata"]
        out = []
        for p in self.pods.list(md["namespace"]):
            ref = controller_ref(p)
            if ref is not None:
                if ref.get("uid") == md["uid"]:
                    out.append(p)
                continue
            if selector_matches(job["spec"].get("selector"), p["metadata"].get("labels")) and \
                    not is_deleting(job) and not is_deleting(p):
                try:
                    out.append(await self.api.patch(PODS, p["metadata"]["name"], {"metadata": {
                        "ownerReferences": (p["metadata"].get("ownerReferences") or []) + [owner_ref(job)],
                        "resourceVersion": p["metadata"]["resourceVersion"]}}, md["namespace"]))
                except (NotFound, Conflict):
                    pass
        return out

    async def sync(self, key: str) -> None:
        job = self.jobs.get_key(key)
        if job is None:
            return
        pods = await self.claim(job)
        spec = job["spec"]
        st = copy.deepcopy(job.get("status") or {})
        done = finished(job)
        # 1-3: count finished pods through the tracking finalizer
        unc = st.setdefault("uncountedTerminatedPods", {})
        known = set(unc.get("succeeded") or []) | set(unc.get("failed") or [])
        newly: list[dict] = []
        for p in pods:
            if TRACKING not in (p["metadata"].get("finalizers") or []) or p["metadata"]["uid"] in known:
                continue
            phase = (p.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed") or is_deleting(p) or done:
                newly.append(p)
        fail_job: str | None = None
        if newly:
            for p in newly:
                ok = (p.get("status") or {}).get("phase") == "Succeeded"
                if not ok and not done and spec.get("podFailurePolicy"):
                    rule = match_failure_rule(job, p)
                    if rule and rule[0] == "FailJob" and fail_job is None:
                        fail_job = rule[1]
                    if rule and rule[0] == "Ignore":
                        continue
                unc.setdefault("succeeded" if ok else "failed", []).append(p["metadata"]["uid"])
            if fail_job:  # written with the uids, so a restart between writes still fails the Job
                t = now_rfc3339()
                st.setdefault("conditions", []).append({
                    "type": "FailureTarget", "status": "True", "reason": "PodFailurePolicy", "message": fail_job,
                    "lastProbeTime": t, "lastTransitionTime": t})
            job = await self.put_status(job, st)
            st = copy.deepcopy(job["status"])
            unc = st.setdefault("uncountedTerminatedPods", {})
            for p in newly:  # (failures a rule said to Ignore were never listed: never counted)
                await self.drop_finalizer(p)
        by_uid = {p["metadata"]["uid"]: p for p in pods}
        indexed = spec.get("completionMode") == "Indexed"
        completed = parse_indexes(st.get("completedIndexes"))
        for field in ("succeeded", "failed"):
            left = []
            for uid in unc.get(field) or []:
                p = by_uid.get(uid)
                if p is not None and TRACKING in (p["metadata"].get("finalizers") or []):
                    pc = self.pods.get(p["metadata"]["namespace"], p["metadata"]["name"])
                    if pc is not None and TRACKING in (pc["metadata"].get("finalizers") or []):
                        left.append(uid)
                        continue
                st[field] = st.get(field, 0) + 1
                if field == "succeeded" and indexed and p is not None and pod_index(p) is not None:
                    completed.add(pod_index(p))
            unc[field] = left
        if indexed:
            st["completedIndexes"] = format_indexes(completed)
            for uid in unc.get("succeeded") or []:  # succeeded, not yet counted: done all the same
                if uid in by_uid and pod_index(by_uid[uid]) is not None:
                    completed.add(pod_index(by_uid[uid]))
        if not unc.get("succeeded") and not unc.get("failed"):
            unc.clear()
        now = time.time()
        active = [p for p in pods if not is_deleting(p) and (p.get("status") or {}).get("phase")
                  not in ("Succeeded", "Failed")]
        st["active"] = len(active)
        st["ready"] = sum(1 for p in active if pod_ready(p))
        st["terminating"] = sum(1 for p in pods if is_deleting(p) and (p.get("status") or {}).get("phase")
                                not in ("Succeeded", "Failed"))
        if done:
            await self.finish_status(job, st)
            return
        if not spec.get("suspend") and not st.get("startTime"):
            st["startTime"] = now_rfc3339()
        conds = st.setdefault("conditions", [])
        # failure
        failure = None
        target = next((c for c in conds if c.get("type") == "FailureTarget" and c.get("status") == "True"), None)
        if target is not None:
            failure = (target.get("reason", ""), target.get("message", ""))
        elif st.get("failed", 0) + len(unc.get("failed") or []) > spec.get("backoffLimit", 6):
            failure = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        elif spec.get("activeDeadlineSeconds") is not None and st.get("startTime") and \
                (parse_time(st["startTime"]) or now) + spec["activeDeadlineSeconds"] <= now:
            failure = ("DeadlineExceeded", "Job was active longer than specified deadline")
        if failure:
            await self.delete_pods(job, active)
            t = now_rfc3339()
            for type_ in ("FailureTarget", "Failed") if target is None else ("Failed",):
                conds.append({"type": type_, "status": "True", "reason": failure[0], "message": failure[1],
                              "lastProbeTime": t, "lastTransitionTime": t})
            await self.finish_status(job, st)
            # after the write: a sync that loses a conflict and runs again must not say it twice
            self.events.emit(job, "Warning", failure[0], failure[1])
            return
        completions = spec.get("completions")
        succeeded = st.get("succeeded", 0) + len(unc.get("succeeded") or [])
        if indexed:
            complete = completions is not None and len({i for i in completed if i < completions}) >= completions
        elif completions is not None:
            complete = succeeded >= completions
        else:
            complete = succeeded > 0 and not active
        if complete and unc:
            await self.finish_status(job, st)  # the last finalizers first; their removal requeues us
            return
        if complete:
            await self.delete_pods(job, active)
            t = now_rfc3339()
            for type_ in ("SuccessCriteriaMet", "Complete"):
                conds.append({"type": type_, "status": "True", "reason": "CompletionsReached",
                              "message": "Reached expected number of succeeded pods",
                              "lastProbeTime": t, "lastTransitionTime": t})
            st["completionTime"] = t
            await self.finish_status(job, st)
            self.events.emit(job, "Normal", "Completed", "Job completed")
            return
        # suspend
        suspended = any(c.get("type") == "Suspended" and c.get("status") == "True" for c in conds)
        if spec.get("suspend"):
            await self.delete_pods(job, active)
            if not suspended:
                t = now_rfc3339()
                st["conditions"] = [c for c in conds if c.get("type") != "Suspended"] + [{
                    "type": "Suspended", "status": "True", "reason": "JobSuspended", "message": "Job suspended",
                    "lastProbeTime": t, "lastTransitionTime": t}]
            st.pop("startTime", None)
            await self.finish_status(job, st)
            if not suspended:
                self.events.emit(job, "Normal", "Suspended", "Job suspended")
            return
        if suspended:
            t = now_rfc3339()
            st["conditions"] = [c for c in conds if c.get("type") != "Suspended"] + [{
                "type": "Suspended", "status": "False", "reason": "JobResumed", "message": "Job resumed",
                "lastProbeTime": t, "lastTransitionTime": t}]
        err = None
        if self.expectations.satisfied(key):
            err = await self.manage(job, st, active, completed)
        await self.finish_status(job, st)
        if spec.get("activeDeadlineSeconds") is not None and st.get("startTime"):
            left = (parse_time(st["startTime"]) or now) + spec["activeDeadlineSeconds"] - now
            self.queue.add_after(key, max(0.1, left))
        if err is not None:
            raise err

    async def manage(self, job: dict, st: dict, active: list[dict], completed: set[int]) -> Exception | None:
        key = key_of(job)
        spec = job["spec"]
        parallelism = spec.get("parallelism", 1)
        completions = spec.get("completions")
        succeeded = st.get("succeeded", 0) + len((st.get("uncountedTerminatedPods") or {}).get("succeeded") or [])
        if spec.get("completionMode") == "Indexed":
            running = {pod_index(p) for p in active}
            pending = [i for i in range(completions or 0) if i not in completed and i not in running]
            want = min(parallelism, len(active) + len(pending))
        elif completions is None:
            want = len(active) if succeeded > 0 else parallelism
            pending = []
        else:
            want = max(0, min(parallelism, completions - succeeded))
            pending = []
        if len(active) > want:
            extra = sorted(active, key=lambda p: (pod_ready(p), p["metadata"].get("creationTimestamp") or ""))
            await self.delete_pods(job, extra[:len(active) - want])
            return None
        n = want - len(active)
        if n <= 0:
            return None
        # counted failures and those still on their way through the tracking finalizer: the
        # back-off starts with the first failure, not once it has been counted
        failed = st.get("failed", 0) + len((st.get("uncountedTerminatedPods") or {}).get("failed") or [])
        if failed:
            seen = self.last_failure.get(key)
            if seen is None or seen[0] != failed:
                seen = (failed, time.monotonic())
                self.last_failure[key] = seen
            delay = min(BACKOFF_MAX, self.backoff_base * 2 ** (min(failed, 16) - 1))
            wait = seen[1] + delay - time.monotonic()
            if wait > 0:
                self.queue.add_after(key, wait)
                return None
        self.expectations.expect_creations(key, n)
        indexes = list(pending[:n]) if spec.get("completionMode") == "Indexed" else [None] * n

        async def create():
            idx = indexes.pop(0)
            try:
                pod = await self.api.create(PODS, self.new_pod(job, idx), job["metadata"]["namespace"])
            except Exception:
                self.expectations.creation_observed(key)
                raise
            self.events.emit(job, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
        ok, err = await slow_start_batch(n, create)
        for _ in range(n - ok - (1 if err else 0)):
            self.expectations.creation_observed(key)
        return err

    async def delete_pods(self, job: dict, pods: list[dict]) -> None:
        if not pods:
            return
        key = key_of(job)
        self.expectations.expect_deletions(key, [key_of(p) for p in pods])
        for p in pods:
            try:
                await self.api.delete(PODS, p["metadata"]["name"], p["metadata"]["namespace"], uid=p["metadata"]["uid"])
            except (NotFound, Conflict):
                self.expectations.deletion_observed(key, key_of(p))

    async def finish_status(self, job: dict, st: dict) -> None:
        for k in ("active", "ready", "terminating", "succeeded", "failed"):
            if not st.get(k) and k not in ("ready",):
                st.pop(k, None)
        if not st.get("uncountedTerminatedPods"):
            st["uncountedTerminatedPods"] = {}
        if st != (job.get("status") or {}):
            await self.put_status(job, st)
