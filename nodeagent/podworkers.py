"""Pod workers: one asyncio task per pod, each an explicit state machine (pod_workers.go).

    update (ADDED/MODIFIED) ──► SYNCING ──(deletionTimestamp, pod gone, or finished)──► TERMINATING
                                   ▲  │                                                     │
              container exit,      └──┘ sync_pod, then sleep until woken                   kill_pod
              back-off ends,                                                                ▼
              new spec                                             TERMINATED ◄──────────────┘
                                                     remove containers, sandbox, cgroup; then the
                                                     final DELETE — or, for a finished pod still in
                                                     the API, remove its cgroup and wait for its
                                                     deletion

Rules the kubelet keeps, and so do we:
- Only the latest update matters: `deliver` replaces the pod the worker will look at next; a
  worker never queues a backlog of old specs.
- A kill request is seen at once, even mid-sync: `sync_pod` checks `kill_requested` between steps,
  so a pod deleted while its sandbox is made or its image pulls goes straight to TERMINATING once
  the step in flight ends — and everything that step made is found (by label) and removed.
- A shorter grace period wins: `kubectl delete --force --grace-period=0` during a 30 s graceful
  stop sends the containers SIGKILL at once.
- Workers never write pod status themselves: they give it to the status manager (status.py).
- A new pod is admitted first (admission.py: host ports free?; eviction/: no node pressure?).
  A rejected pod gets a worker that goes straight to TERMINATED: it reports the rejection (phase
  Failed, reason NodePorts or Evicted), starts nothing, and waits for the pod's deletion like any
  finished pod.
- An evicted pod (eviction/) is killed with the grace period eviction chose (1 s for a hard
  threshold, at most --eviction-max-pod-grace-period for a soft one) and ends Failed, reason Evicted,
  with a DisruptionTarget condition; it stays in the API until someone deletes it.
- A pod past its activeDeadlineSeconds (counted from status.startTime, active_deadline.go) is
  killed with its own grace period and ends Failed, reason DeadlineExceeded; a Normal event of
  that reason says so. The worker wakes at the deadline to check.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time

from nodeagent import admission, podstatus
from nodeagent.cri.api import ContainerState
from nodeagent.kuberuntime import RuntimeManager, SyncResult
from nodeagent.status import StatusManager

log = logging.getLogger("nodeagent.podworkers")


class WorkerState(enum.Enum):
    SYNCING = "syncing"
    TERMINATING = "terminating"
    TERMINATED = "terminated"


def _grace(pod: dict, removed: bool) -> float:
    md, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    if removed:
        # Gone from the API while still running: only a force delete does that (the graceful
        # path ends with *our* final DELETE), and nobody waits for a grace period any more.
        return 0.0
    if md.get("deletionGracePeriodSeconds") is not None:
        return float(md["deletionGracePeriodSeconds"])
    g = spec.get("terminationGracePeriodSeconds")
    return 30.0 if g is None else float(g)


def _changed(old: dict, new: dict) -> bool:
    """Does the update ask the worker for anything? Like the kubelet's pod config, a change of
    status alone (most often the status manager's own write coming back) does not."""
    o, n = old.get("metadata") or {}, new.get("metadata") or {}
    keys = ("labels", "annotations", "deletionTimestamp", "deletionGracePeriodSeconds")
    return old.get("spec") != new.get("spec") or any(o.get(k) != n.get(k) for k in keys) or \
        ((old.get("status") or {}).get("phase") != (new.get("status") or {}).get("phase")
         and (new.get("status") or {}).get("phase") in ("Succeeded", "Failed"))


class PodWorker:
    def __init__(self, workers: "PodWorkers", pod: dict,
                 rejection: admission.Rejection | None = None):
        self.workers = workers
        self.rejection = rejection              # set once, at admission: never runs
        self.evicted: str | None = None         # the eviction message, once evicted
        self.eviction_grace = EVICTION_GRACE    # the grace period eviction chose
        self.disruption = True                  # report a DisruptionTarget condition with it
        self.deadline_exceeded = False          # activeDeadlineSeconds has passed
        self.uid = pod["metadata"]["uid"]
        self.pod = pod                          # the latest update; replaced by deliver()
        self.state = WorkerState.SYNCING        # owned by run()
        self.removed = False                    # the pod is no longer in the API
        self.grace: float | None = None         # the grace period of the kill in progress
        self.cgroup_released = False            # a finished pod's cgroup removed (owned by run())
        self._wake = asyncio.Event()
        self.task: asyncio.Task | None = None

    # --- inputs -------------------------------------------------------------------------------------
    def deliver(self, pod: dict, removed: bool = False) -> None:
        self.pod = pod
        self.removed = self.removed or removed
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def kill_requested(self) -> bool:
        md = self.pod.get("metadata") or {}
        return self.removed or bool(md.get("deletionTimestamp"))

    def _finished_in_api(self) -> bool:
        return (self.pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")

    # --- the machine --------------------------------------------------------------------------------
    async def run(self) -> None:
        m = self.workers.manager
        while True:
            if self.state is WorkerState.SYNCING:
                if self.rejection is not None:
                    self._reject()
                    self.state = WorkerState.TERMINATED
                    continue
                if not self.deadline_exceeded and self._past_deadline():
                    self.deadline_exceeded = True
                    m.recorder.event(self.pod, "Normal", DEADLINE_REASON, DEADLINE_MESSAGE)
                    # Failed at once, as the kubelet's status says, while the containers stop
                    self._report(self.pod, await m.observe(self.uid), SyncResult(), stopping=True)
                if self.kill_requested() or self._finished_in_api() or self.evicted or \
                        self.deadline_exceeded:
                    self.state = WorkerState.TERMINATING
                    continue
                self._wake.clear()
                pod = self.pod
                if self.workers.status.status(self.uid) is None and \
                        not (pod.get("status") or {}).get("containerStatuses"):
                    # the kubelet's SyncPod sets the status before it makes anything: Pending,
                    # ContainerCreating, while the sandbox and the image take their time
                    self._report(pod, await m.observe(self.uid), SyncResult())
                result, state = await m.sync_pod(pod, self.kill_requested)
                self._report(pod, state, result)
                if podstatus.terminal(pod, state):
                    self.state = WorkerState.TERMINATING   # finished: stop the sandbox
                    continue
                deadline = self._deadline()
                await self._sleep(result.retry_at if deadline is None or result.retry_at is not None
                                  and result.retry_at < deadline else deadline)
            elif self.state is WorkerState.TERMINATING:
                await self._kill()
                self.state = WorkerState.TERMINATED
            else:
                pod = self.pod
                state = await m.observe(self.uid)
                deleting = self.kill_requested()
                if not self.removed and self.rejection is None:
                    self._report(pod, state, SyncResult(),
                                 stopping=deleting or bool(self.evicted) or self.deadline_exceeded)
                if not deleting:
                    if not self.cgroup_released:  # a finished pod: nothing will run in it again
                        self.cgroup_released = True
                        await m.terminated(self.uid)
                    self._wake.clear()
                    await self._wake.wait()       # a finished pod: wait for its deletion
                    continue
                if self.workers.prober is not None:
                    self.workers.prober.forget(self.uid)
                await m.remove_pod(self.uid)
                if self.removed:
                    self.workers.status.forget(self.uid)
                else:
                    await self.workers.status.delete_pod(pod)
                return

    def _deadline(self) -> float | None:
        """When activeDeadlineSeconds runs out (wall time), or None: no deadline, or no startTime
        yet (the kubelet counts from the start time it reported)."""
        seconds = (self.pod.get("spec") or {}).get("activeDeadlineSeconds")
        status = self.workers.status.status(self.uid) or self.pod.get("status") or {}
        start = podstatus.parse_rfc3339(status.get("startTime"))
        return None if seconds is None or start is None else start + int(seconds)

    def _past_deadline(self) -> bool:
        deadline = self._deadline()
        return deadline is not None and time.time() >= deadline

    def _reject(self) -> None:
        """The kubelet's rejectPod: a Warning event named after the failed check, phase Failed."""
        r = self.rejection
        log.info("pod %s rejected: %s", self.uid, r.message)
        self.workers.manager.recorder.event(self.pod, "Warning", r.reason, r.message)
        self.workers.status.set_status(
            self.pod, r.status((self.pod.get("status") or {}).get("qosClass")))

    async def _sleep(self, until: float | None) -> None:
        timeout = None if until is None else max(0.0, until - time.time())
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    async def _kill(self) -> None:
        """kill_pod with the pod's grace period; a shorter one delivered meanwhile starts a second
        kill at once (the runtime's stop is idempotent and the shorter deadline wins)."""
        m = self.workers.manager
        killing = self.kill_requested() or self.deadline_exceeded
        self.grace = _grace(self.pod, self.removed) if killing else 0.0
        if self.evicted and (not killing or self.eviction_grace < self.grace):
            self.grace = self.eviction_grace
        kills = {asyncio.create_task(m.kill_pod(self.pod, self.uid, self.grace))}
        while True:
            self._wake.clear()
            waker = asyncio.create_task(self._wake.wait())
            done, _ = await asyncio.wait(kills | {waker}, return_when=asyncio.FIRST_COMPLETED)
            if all(k.done() for k in kills):
                waker.cancel()
                for k in kills:
                    if k.exception() is not None:
                        log.warning("pod %s: kill: %s", self.uid, k.exception())
                return
            if waker in done and self.kill_requested():
                g = _grace(self.pod, self.removed)
                if g < self.grace:
                    self.grace = g
                    kills.add(asyncio.create_task(m.kill_pod(self.pod, self.uid, g)))

    def _report(self, pod: dict, state, result: SyncResult, stopping: bool = False) -> None:
        if self.removed:
            return
        status_mgr = self.workers.status
        base = status_mgr.status(self.uid) or pod.get("status") or {}
        view = dict(pod, status=base)
        if stopping:
            # A deleted pod ends in a terminal phase (the kubelet since 1.27): judged as if its
            # restartPolicy were Never — killed containers are failures unless they exited 0.
            view["spec"] = dict(pod.get("spec") or {}, restartPolicy="Never")
        prober = self.workers.prober
        if prober is not None:
            running = {c.metadata.name: c.id for c in state.containers
                       if c.state is ContainerState.RUNNING and state.sandbox is not None
                       and c.pod_sandbox_id == state.sandbox.id}
            prober.sync(pod, {} if stopping else running, state.sandbox.ip if state.sandbox else None)
        status = podstatus.generate(view, state, result, host_ip=self.workers.host_ip,
                                    runtime_name=self.workers.runtime_name, now=time.time(),
                                    prober=prober)
        if self.evicted and stopping:
            status = _evicted(status, self.evicted, self.disruption)
        elif self.deadline_exceeded and stopping:
            status = dict(status, phase="Failed", reason=DEADLINE_REASON, message=DEADLINE_MESSAGE)
        status_mgr.set_status(pod, status)


DEADLINE_REASON = "DeadlineExceeded"
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
EVICTION_GRACE = 1.0     # immediateEvictionGracePeriodSeconds: a hard threshold was met


def _evicted(status: dict, message: str, disruption: bool = True) -> dict:
    """An evicted pod's status: Failed, reason Evicted, and — for node pressure, not for a local
    storage limit — DisruptionTarget (the kubelet's)."""
    now = podstatus.rfc3339(time.time())
    conds = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionTarget"]
    if disruption:
        conds.append({"type": "DisruptionTarget", "status": "True", "lastTransitionTime": now,
                      "reason": "TerminationByKubelet", "message": message})
    return dict(status, phase="Failed", reason="Evicted", message=message, conditions=conds)


class PodWorkers:
    def __init__(self, manager: RuntimeManager, status: StatusManager, host_ip: str,
                 runtime_name: str = "nodeagent", prober=None):
        self.manager, self.status, self.host_ip, self.runtime_name = manager, status, host_ip, runtime_name
        self.prober = prober                         # nodeagent.prober.Prober, or None
        self.workers: dict[str, PodWorker] = {}      # uid → worker; owned by the agent's loop
        self.admit_more = None                       # eviction.EvictionManager.admit, or None
        self._finished: set[str] = set()             # uids whose worker is done (until DELETED)

    def update(self, pod: dict) -> None:
        uid = pod["metadata"]["uid"]
        if uid in self._finished:
            return
        w = self.workers.get(uid)
        if w is None:
            w = self.workers[uid] = PodWorker(self, pod, self._admit(pod))
            w.task = asyncio.create_task(self._run(w), name=f"pod {pod['metadata'].get('name')}")
        elif _changed(w.pod, pod):
            w.deliver(pod)
        else:
            w.pod = pod          # only the status moved (often our own write): nothing to do

    def _admit(self, pod: dict) -> admission.Rejection | None:
        """Admission of a pod seen for the first time, against the active pods (admitted, not
        terminated). A pod that is finished, being deleted, or already Running (admitted before
        the agent restarted) is not checked again."""
        md, st = pod.get("metadata") or {}, pod.get("status") or {}
        if md.get("deletionTimestamp") or st.get("phase") in ("Running", "Succeeded", "Failed"):
            return None
        if self.admit_more is not None:
            rejected = self.admit_more(pod)
            if rejected is not None:
                return rejected
        return admission.admit(pod, self.active_pods())

    def active_pods(self) -> list[dict]:
        """Admitted pods not yet terminated — a pod in its grace period still holds its ports."""
        return [w.pod for w in self.workers.values()
                if w.rejection is None and w.state is not WorkerState.TERMINATED]

    def evictable_pods(self) -> list[dict]:
        """Active pods that nobody is stopping yet (eviction's candidates)."""
        return [w.pod for w in self.workers.values()
                if w.rejection is None and not w.evicted and not w.kill_requested()
                and w.state is WorkerState.SYNCING]

    def evict(self, pod: dict, message: str, grace: float = EVICTION_GRACE,
              disruption: bool = True) -> None:
        """Kill the pod with this grace period and report it Evicted (the eviction manager's
        choice), with a DisruptionTarget condition unless told not to; it stays in the API."""
        w = self.workers.get(pod["metadata"]["uid"])
        if w is None or w.evicted:
            return
        w.evicted, w.eviction_grace, w.disruption = message, grace, disruption
        self.manager.recorder.event(w.pod, "Warning", "Evicted", message)
        w.wake()

    def cleaned_up(self, pod: dict) -> bool:
        """Has an evicted pod's worker finished killing it (the eviction manager waits for it)?"""
        w = self.workers.get(pod["metadata"]["uid"])
        return w is None or w.state is WorkerState.TERMINATED

    def remove(self, pod: dict) -> None:
        """The pod has left the API (its final DELETE, or a force delete)."""
        uid = pod["metadata"]["uid"]
        w = self.workers.get(uid)
        if w is not None:
            w.deliver(pod, removed=True)
        self._finished.discard(uid)

    def wake(self, uid: str) -> None:
        w = self.workers.get(uid)
        if w is not None:
            w.wake()

    def wake_all(self) -> None:
        for w in self.workers.values():
            w.wake()

    async def _run(self, w: PodWorker) -> None:
        try:
            while True:
                try:
                    await w.run()
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - one pod's bug must not stop the others
                    log.exception("pod worker %s failed; retrying in 1 s", w.uid)
                    await asyncio.sleep(1)
        finally:
            if self.workers.get(w.uid) is w:
                del self.workers[w.uid]
            if not w.removed:
                self._finished.add(w.uid)

    async def cleanup_orphans(self, known_uids: set[str]) -> None:
        """Pods the runtime has but the API no longer does (deleted while the agent was down):
        kill and remove them, as the kubelet's HandlePodCleanups does. Each container gets its
        preStop hook and its pod's grace period, restored from what was stored with it when it
        was made (kill_pod with no pod) — what the kubelet's container annotations (labels.go)
        and killContainer's restoreSpecsFromContainerLabels were made for. (Today's kubelet
        reaches this case through SyncTerminatingRuntimePod instead, which kills with a 1 s
        override and a skeleton pod without hooks: we keep the hook, as the labels intend.)
        The pods are stopped in parallel, as each has a worker of its own upstream: one waiting
        out its grace period must not hold up the others."""
        async def clean(uid: str) -> None:
            log.info("removing pod %s: it is no longer in the API", uid)
            await self.manager.kill_pod(None, uid, None)
            await self.manager.remove_pod(uid)

        orphans = await self.manager.all_pod_uids() - known_uids - set(self.workers)
        await asyncio.gather(*(clean(uid) for uid in orphans))

    async def stop(self) -> None:
        tasks = [w.task for w in self.workers.values() if w.task]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
