"""SyncPod, KillPod: one pass of "make the runtime match the pod spec" (kuberuntime_manager.go).

A pod worker calls `sync_pod` whenever something may have changed (a new spec, a container exit,
the end of a back-off). Each call looks at what the runtime has *now* and takes the next steps:

    1. observe         the pod's sandboxes and containers, found by the pod-uid label — never
                       from memory, so a restarted agent sees exactly what is running
    2. sandbox         none ready → (stop the old one and its containers), make a new one: the
                       pod cgroup (cm.py), then RunPodSandbox (netns, CNI ADD, pod IP)
    3. init containers in order: the first that has not succeeded is started (or restarted, after
                       its back-off) and the pass ends there; a failed one with restartPolicy
                       Never fails the pod. A sidecar (an init container with restartPolicy
                       Always, KEP-753) only has to have started; it is kept running beside
                       the app containers and restarted whenever it exits
    4. app containers  each missing one is started; each exited one is restarted if the
                       restartPolicy says so (Always; OnFailure and exit code ≠ 0), unless it is
                       in its back-off — then it waits as CrashLoopBackOff
    5. collect garbage of each container name only the newest exited instance stays (for
                       `lastState` and `kubectl logs --previous`)

Starting one container is: the image (images.py) → its config (config.py) → CreateContainer →
StartContainer → its postStart hook (lifecycle.py), with the kubelet's events (Pulling, Pulled,
Created, Started, Failed, BackOff, FailedPostStartHook) and, on failure, the waiting reason the
status will show (ErrImagePull, CreateContainerError, PostStartHookError...).

Stopping one container (`kill_container`: pod deletion, failed liveness, failed postStart) is:
the Killing event, the preStop hook within the grace period, then SIGTERM (or the image's
StopSignal) and SIGKILL once the rest of the grace period is over. `kill_pod` stops every
container that way — the regular ones in parallel as the kubelet does, then the sidecars one
by one in reverse order — and then the sandbox; `remove_pod` removes them and the pod's
cgroup. Both are idempotent: the runtime's stop and remove succeed on what is already gone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from nodeagent import volumes
from nodeagent.backoff import Backoff
from nodeagent.cri.api import (
    ContainerState, ContainerStatus, CRIError, ImageService, NotFound, PodSandboxStatus,
    RuntimeService, SandboxState)
from nodeagent.envvars import ConfigError, Lookup
from nodeagent.events import NORMAL, WARNING, EventRecorder
from nodeagent.kuberuntime import config as cfg
from nodeagent.kuberuntime.images import ImageError, ImagePuller
from nodeagent.kuberuntime.lifecycle import HookFailed, HookRunner
from nodeagent.volumes import VolumeError

log = logging.getLogger("nodeagent.kuberuntime")


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String for whole seconds: 10s, 1m20s, 5m0s."""
    s = int(seconds)
    return f"{s // 60}m{s % 60}s" if s >= 60 else f"{s}s"


def _pod_ip(sb: PodSandboxStatus) -> str:
    """Where a hook's httpGet goes: the pod IP (a hostNetwork pod is on the node: loopback)."""
    return sb.ip or "127.0.0.1"


def _pod_ips(sb: PodSandboxStatus) -> tuple[str, ...]:
    """The sandbox's IPs, primary first (none for a hostNetwork pod: the config uses the node's)."""
    return ((sb.ip,) if sb.ip else ()) + tuple(sb.additional_ips)


def is_sidecar(c: dict) -> bool:
    """A restartable init container (KEP-753: `restartPolicy: Always` on an init container)."""
    return c.get("restartPolicy") == "Always"


def field_path(name: str, init: bool, ephemeral: bool = False) -> str:
    """The container's place in the pod, as events name it (involvedObject.fieldPath)."""
    kind = "ephemeralContainers" if ephemeral else "initContainers" if init else "containers"
    return f"spec.{kind}{{{name}}}"


def definition_changed(c: dict, cs: ContainerStatus) -> bool:
    """The kubelet's containerChanged: the hash of the container's name and image (since 1.31
    nothing else — the image is all of a container an update may change) differs from the one
    it was started with. Our runtime keeps the image reference as it was given."""
    return bool(cs.image) and cs.image != c.get("image", "")


def should_restart(policy: str, exit_code: int | None) -> bool:
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return exit_code != 0
    return True


@dataclass
class PodRuntimeState:
    """What the runtime has for one pod (kubecontainer.PodStatus): newest first."""
    uid: str
    sandboxes: list[PodSandboxStatus] = field(default_factory=list)
    containers: list[ContainerStatus] = field(default_factory=list)

    @property
    def sandbox(self) -> PodSandboxStatus | None:
        return self.sandboxes[0] if self.sandboxes else None

    def ready_sandbox(self) -> PodSandboxStatus | None:
        sb = self.sandbox
        return sb if sb is not None and sb.state is SandboxState.READY else None

    def of(self, name: str) -> list[ContainerStatus]:
        return [c for c in self.containers if c.metadata.name == name]

    def latest(self, name: str) -> ContainerStatus | None:
        found = self.of(name)
        return found[0] if found else None


@dataclass
class SyncResult:
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)   # name → (reason, message)
    retry_at: float | None = None                                        # wall time to sync again
    sandbox_error: str | None = None

    def wake_at(self, t: float | None) -> None:
        if t is not None and (self.retry_at is None or t < self.retry_at):
            self.retry_at = t


class PodCgroups:
    """What the runtime manager needs of the container manager (cm.py)."""
    def pod_path(self, pod: dict) -> str: ...
    def ensure_pod(self, pod: dict) -> str: ...
    def remove_pod(self, uid: str) -> None: ...


class RuntimeManager:
    def __init__(self, runtime: RuntimeService, images: ImageService, cm: PodCgroups,
                 recorder: EventRecorder, lookup: Lookup, node: cfg.NodeFacts,
                 runtime_name: str = "nodeagent"):
        self.runtime, self.cm, self.recorder, self.lookup, self.node = runtime, cm, recorder, lookup, node
        self.runtime_name = runtime_name
        self.backoff = Backoff()                     # container restarts, keyed "<uid>/<name>/<image>"
        self.puller = ImagePuller(images, recorder)  # image pulls, keyed "<uid>_<image>"
        self._pods: dict[str, tuple[set[str], set[str]]] | None = None   # uid → (sandboxes, containers)
        self._first_listing = asyncio.Lock()         # one listing at startup, awaited by all
        self.prober = None                           # nodeagent.prober.Prober (set by the agent)
        self.hooks = HookRunner(runtime)             # postStart / preStop (lifecycle.py)
        self.tokens = None                           # volumes.TokenCache (set by the agent)
        self._cgroups_left: set[str] = set()         # pod uids whose cgroup was still busy

    # --- 1. observe ---------------------------------------------------------------------------------
    # Which sandboxes and containers belong to which pod: read from the runtime once (labels), then
    # kept as we create and remove them, and refreshed by every PLEG relist (`learn`). Asking the
    # runtime for *everything* on each sync would cost O(pods) per pod — O(pods²) per round.
    # Until the first listing is in, nothing is known: every caller waits for it. (Publishing an
    # empty index while the listing ran let a second pod worker of a restarted agent see "no
    # sandbox, no containers" and start its pod afresh — a slow machine's listing made it visible.)
    async def _index(self) -> dict[str, tuple[set[str], set[str]]]:
        if self._pods is None:
            async with self._first_listing:
                if self._pods is None:
                    sandboxes = await self.runtime.list_pod_sandboxes()
                    containers = await self.runtime.list_containers()
                    self.learn(sandboxes, containers)
        return self._pods

    def learn(self, sandboxes: list[PodSandboxStatus], containers: list[ContainerStatus]) -> None:
        """Record what a full listing of the runtime shows (startup, PLEG relist)."""
        if self._pods is None:
            self._pods = {}
        owner = {}
        for sb in sandboxes:
            self._pods.setdefault(sb.metadata.uid, (set(), set()))[0].add(sb.id)
            owner[sb.id] = sb.metadata.uid
        for c in containers:
            uid = owner.get(c.pod_sandbox_id) or c.labels.get(cfg.POD_UID)
            if uid:
                self._pods.setdefault(uid, (set(), set()))[1].add(c.id)

    async def observe(self, uid: str) -> PodRuntimeState:
        sandbox_ids, container_ids = (await self._index()).get(uid, (set(), set()))
        sandboxes, containers = [], []
        for sid in list(sandbox_ids):
            try:
                sandboxes.append(await self.runtime.pod_sandbox_status(sid))
            except NotFound:
                sandbox_ids.discard(sid)
        for cid in list(container_ids):
            try:
                containers.append(await self.runtime.container_status(cid))
            except NotFound:
                container_ids.discard(cid)
        sandboxes.sort(key=lambda s: (s.metadata.attempt, s.created_at), reverse=True)
        containers.sort(key=lambda c: (c.metadata.attempt, c.created_at), reverse=True)
        return PodRuntimeState(uid, sandboxes, containers)

    def _made(self, uid: str, sandbox_id: str | None = None, container_id: str | None = None) -> None:
        entry = self._pods.setdefault(uid, (set(), set())) if self._pods is not None else None
        if entry is not None and sandbox_id:
            entry[0].add(sandbox_id)
        if entry is not None and container_id:
            entry[1].add(container_id)

    async def all_pod_uids(self) -> set[str]:
        return {uid for uid, (sbs, cs) in (await self._index()).items() if sbs or cs}

    # --- SyncPod ------------------------------------------------------------------------------------
    async def sync_pod(self, pod: dict, stop: Callable[[], bool]) -> tuple[SyncResult, PodRuntimeState]:
        """One pass; returns what happened and the runtime state after it. `stop()` true means the
        pod is being killed: take no further step."""
        uid = pod["metadata"]["uid"]
        spec = pod.get("spec") or {}
        policy = spec.get("restartPolicy") or "Always"
        result = SyncResult()
        state = await self.observe(uid)
        if stop():
            return result, state

        # 2. the sandbox
        sb = state.ready_sandbox()
        if sb is None:
            ran_before = bool(state.containers)
            if policy == "Never" and state.sandboxes and ran_before:
                return result, state          # a finished Never pod is not brought back
            sb = await self._new_sandbox(pod, state, result)
            if sb is None or stop():
                return result, await self.observe(uid)
            state = await self.observe(uid)

        # the pod's volumes, made (or brought up to date) before any container needs them
        try:
            planned = await volumes.plan(pod, self.lookup, self.node.allocatable, self.tokens)
            fs_group = (spec.get("securityContext") or {}).get("fsGroup")
            paths = await asyncio.to_thread(volumes.make, self.node.pods_dir, uid, planned, fs_group,
                                            volumes.memory_size(pod, {}, self.node.allocatable))
        except VolumeError as e:
            self.recorder.event(pod, WARNING, "FailedMount", str(e))
            result.wake_at(time.time() + 2)
            return result, state

        def current(name: str) -> ContainerStatus | None:
            c = state.latest(name)
            return c if c is not None and c.pod_sandbox_id == sb.id else None

        # ephemeral containers (kubectl debug): first, as the kubelet starts them — they may be
        # there to debug a pod stuck in its init containers — each once, never restarted
        for c in spec.get("ephemeralContainers") or []:
            if stop():
                return result, state
            if state.latest(c["name"]) is None:
                await self._start(pod, c, state, sb, result, init=False, after=None, volumes=paths,
                                  stop=stop, ephemeral=True)

        # 3. init containers, in order, each to success — or, for a sidecar, started
        for c in spec.get("initContainers") or []:
            cs = current(c["name"])
            if is_sidecar(c):
                if await self._sidecar(pod, c, cs, state, sb, result, paths, stop):
                    continue
                return result, await self.observe(uid)
            if cs is not None and cs.state is ContainerState.EXITED and cs.exit_code == 0:
                continue
            if cs is not None and cs.state in (ContainerState.RUNNING, ContainerState.CREATED):
                return result, state
            if cs is not None and cs.state is ContainerState.EXITED and policy == "Never":
                return result, state          # the pod has failed (podstatus.py says so)
            await self._start(pod, c, state, sb, result, init=True, after=cs, volumes=paths,
                              stop=stop)
            return result, await self.observe(uid)

        # 4. app containers
        for c in spec.get("containers") or []:
            if stop():
                break
            cs = current(c["name"])
            latest = state.latest(c["name"])
            changed = False
            if cs is not None and cs.state is ContainerState.RUNNING:
                grace = spec.get("terminationGracePeriodSeconds", 30)
                if definition_changed(c, cs):
                    # computePodActions: the spec changed (its image: the one container field a
                    # pod may change) — restart it whatever the restart policy says
                    changed = True
                    why = f"Container {c['name']} definition changed, will be restarted"
                else:
                    why = self.prober.failed_liveness(c, cs.id) if self.prober else None
                    if why is None:
                        continue
                    # liveness (or startup) failed: stop it, then the restart policy decides
                    grace = (c.get("livenessProbe") or {}).get("terminationGracePeriodSeconds") or grace
                await self.kill_container(pod, c, cs.id, float(grace), why, _pod_ip(sb))
                state = await self.observe(uid)
                latest = state.latest(c["name"])
            if cs is not None and cs.state is ContainerState.CREATED:
                await self._run(pod, c, cs.id, result, init=False, pod_ip=_pod_ip(sb), stop=stop)
                continue
            if latest is not None and latest.state is not ContainerState.RUNNING and not changed \
                    and not should_restart(policy, latest.exit_code):
                continue                    # done for good (Never; OnFailure after success)
            await self._start(pod, c, state, sb, result, init=False, after=latest, volumes=paths,
                              stop=stop)

        state = await self.observe(uid)
        await self._collect_garbage(state)
        return result, state

    async def _sidecar(self, pod: dict, c: dict, cs: ContainerStatus | None, state: PodRuntimeState,
                       sb: PodSandboxStatus, result: SyncResult, paths: dict[str, str],
                       stop: Callable[[], bool]) -> bool:
        """One sidecar's step (KEP-753): kept running — restarted after any exit, with back-off,
        whatever the pod's restartPolicy; a failed liveness probe restarts it. True when the
        init sequence may go on: it runs and has started (startupProbe), or it started once
        before in this sandbox (a crash later does not hold back what follows)."""
        if cs is not None and cs.state is ContainerState.RUNNING:
            why = self.prober.failed_liveness(c, cs.id) if self.prober else None
            if why is None:
                return self.prober is None or self.prober.started(c, cs.id)
            grace = (c.get("livenessProbe") or {}).get("terminationGracePeriodSeconds") or \
                (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            await self.kill_container(pod, c, cs.id, float(grace), why, _pod_ip(sb),
                                      fp=f"spec.initContainers{{{c['name']}}}")
            cs = (await self.observe(pod["metadata"]["uid"])).latest(c["name"])
        if cs is not None and cs.state is ContainerState.CREATED:
            await self._run(pod, c, cs.id, result, init=True, pod_ip=_pod_ip(sb), stop=stop)
            return False
        ran_before = cs is not None and cs.pod_sandbox_id == sb.id
        await self._start(pod, c, state, sb, result, init=True, after=cs, volumes=paths, stop=stop)
        return ran_before

    async def _new_sandbox(self, pod: dict, state: PodRuntimeState, result: SyncResult):
        if state.sandboxes:
            self.recorder.event(pod, NORMAL, "SandboxChanged",
                                "Pod sandbox changed, it will be killed and re-created.")
            for old in state.sandboxes:
                await self.runtime.stop_pod_sandbox(old.id)
        try:
            # the pod's directory before its cgroup: it is what tells `nodeagent down` the pod
            # (and so its cgroup) is this node's, even if the agent dies before the sandbox exists
            await asyncio.to_thread(volumes.pod_dir(self.node.pods_dir, pod["metadata"]["uid"]).mkdir,
                                    parents=True, exist_ok=True)
            parent = await asyncio.to_thread(self.cm.ensure_pod, pod)
            config = cfg.sandbox_config(pod, self.node, len(state.sandboxes), parent,
                                        lambda msg: self.recorder.event(pod, WARNING,
                                                                        "DNSConfigForming", msg))
            sandbox_id = await self.runtime.run_pod_sandbox(config)
            self._made(pod["metadata"]["uid"], sandbox_id=sandbox_id)
            return await self.runtime.pod_sandbox_status(sandbox_id)
        except (CRIError, OSError, Exception) as e:  # noqa: BLE001 - any failure is the pod's
            msg = getattr(e, "message", None) or str(e)
            result.sandbox_error = msg
            result.wake_at(time.time() + 5)
            self.recorder.event(pod, WARNING, "FailedCreatePodSandBox",
                                f"Failed to create pod sandbox: {msg}")
            log.warning("pod %s: sandbox: %s", cfg.pod_key(pod), msg)
            return None

    async def _start(self, pod: dict, c: dict, state: PodRuntimeState, sb: PodSandboxStatus,
                     result: SyncResult, *, init: bool, after: ContainerStatus | None,
                     volumes: dict[str, str] | None = None,
                     stop: Callable[[], bool] = lambda: False, ephemeral: bool = False) -> None:
        """Start container c (again, if `after` is its previous instance), honouring back-off."""
        md = pod["metadata"]
        name = c["name"]
        fp = field_path(name, init, ephemeral)
        attempt = 0 if after is None else after.metadata.attempt + 1
        if after is not None and after.state is ContainerState.EXITED:
            # GetStableKey: the container's hash (its image) is part of the key, so a container
            # whose image was updated starts afresh rather than in the old one's back-off
            key = f"{md['uid']}/{name}/{c.get('image', '')}"
            finished = after.finished_at or time.time()
            if self.backoff.in_backoff_since(key, finished):
                delay = self.backoff.delay(key)
                result.waiting[name] = (
                    "CrashLoopBackOff", f"back-off {go_duration(delay)} restarting failed "
                                        f"container={name} pod={md['name']}_{md.get('namespace')}"
                                        f"({md['uid']})")
                result.wake_at(self.backoff.retry_at(key, finished))
                self.recorder.event(pod, WARNING, "BackOff",
                                    f"Back-off restarting failed container {name} in pod "
                                    f"{cfg.pod_key(pod)}", fp)
                return
            self.backoff.next(key)
        try:
            image = await self.puller.ensure(pod, c, fp, self.lookup)
        except ImageError as e:
            result.waiting[name] = (e.reason, e.message)
            retry = self.puller.retry_at(pod, c) or time.time() + 10
            if e.reason == "ErrImagePull":
                # look again soon: the status then says ImagePullBackOff until the retry, as the
                # kubelet's shows within a few seconds of a failed pull
                retry = min(retry, time.time() + min(2.0, self.puller.backoff.initial / 2))
            result.wake_at(retry)
            return
        try:
            config = await cfg.container_config(pod, c, attempt=attempt, init=init, node=self.node,
                                                lookup=self.lookup, image=image, volumes=volumes or {},
                                                pod_ips=_pod_ips(sb))
        except (ConfigError, VolumeError) as e:
            result.waiting[name] = (ConfigError.reason, str(e))
            result.wake_at(time.time() + 10)
            self.recorder.event(pod, WARNING, "Failed", f"Error: {e}", fp)
            return
        sandbox_config = cfg.sandbox_config(pod, self.node, sb.metadata.attempt,
                                            self.cm.pod_path(pod))
        try:
            cid = await self.runtime.create_container(sb.id, config, sandbox_config)
            self._made(md["uid"], container_id=cid)
        except CRIError as e:
            result.waiting[name] = (e.reason if e.reason != "RuntimeError" else "CreateContainerError",
                                    e.message)
            result.wake_at(time.time() + 10)
            self.recorder.event(pod, WARNING, "Failed", f"Error: {e.message}", fp)
            return
        # the current kubelet's words (kuberuntime_container.go startContainer)
        self.recorder.event(pod, NORMAL, "Created", "Container created", fp)
        await self._run(pod, c, cid, result, init=init, pod_ip=_pod_ip(sb), stop=stop, fp=fp)

    async def _run(self, pod: dict, c: dict, cid: str, result: SyncResult, *, init: bool,
                   pod_ip: str | None = None, stop: Callable[[], bool] = lambda: False,
                   fp: str = "") -> None:
        fp = fp or field_path(c["name"], init)
        try:
            await self.runtime.start_container(cid)
        except CRIError as e:
            result.waiting[c["name"]] = ("RunContainerError", e.message)
            result.wake_at(time.time() + 10)
            self.recorder.event(pod, WARNING, "Failed", f"Error: {e.message}", fp)
            return
        self.recorder.event(pod, NORMAL, "Started", "Container started", fp)
        hook = (c.get("lifecycle") or {}).get("postStart")
        if hook:
            await self._post_start(pod, c, cid, hook, result, pod_ip, stop, fp)

    async def _post_start(self, pod: dict, c: dict, cid: str, hook: dict, result: SyncResult,
                          pod_ip: str | None, stop: Callable[[], bool], fp: str) -> None:
        """Run the postStart hook to its end (the worker waits, as the kubelet's does); a pod
        deleted meanwhile abandons it — its kill stops the container and so the hook."""
        task = asyncio.create_task(self.hooks.run(pod, c, cid, hook, pod_ip))
        while not task.done():
            await asyncio.wait({task}, timeout=0.5)
            if stop() and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                return
        try:
            task.result()
        except HookFailed as e:
            log.info("pod %s: postStart of %s failed: %s", cfg.pod_key(pod), c["name"], e)
            # the hook's output may hold secrets: the event only says that it failed
            self.recorder.event(pod, WARNING, "FailedPostStartHook", "PostStartHook failed", fp)
            grace = float((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
            await self.kill_container(pod, c, cid, grace, "FailedPostStartHook", pod_ip, fp=fp)
            # waiting with the hook's error until the restart; a container that will not be
            # restarted shows how it ended (terminated) instead, as the kubelet's status does
            try:
                code = (await self.runtime.container_status(cid)).exit_code
            except NotFound:
                code = None
            if should_restart((pod.get("spec") or {}).get("restartPolicy") or "Always", code):
                result.waiting[c["name"]] = ("PostStartHookError", str(e))
            result.wake_at(time.time() + 1)

    async def kill_container(self, pod: dict | None, c: dict | None, cid: str, grace: float,
                             message: str, pod_ip: str | None, fp: str | None = None) -> None:
        """The kubelet's killContainer: the Killing event, the preStop hook (which counts against
        the grace period), then the stop signal and, after what is left of it, SIGKILL."""
        name = (c or {}).get("name", "")
        fp = fp or f"spec.containers{{{name}}}"
        if pod is not None:
            self.recorder.event(pod, NORMAL, "Killing", message, fp)
        if pod is not None and c is not None:
            def failed(why: str) -> None:
                log.info("pod %s: preStop of %s failed: %s", cfg.pod_key(pod), name, why)
                self.recorder.event(pod, WARNING, "FailedPreStopHook", "PreStopHook failed", fp)
            grace = await self.hooks.pre_stop(pod, c, cid, pod_ip, grace, failed)
        try:
            await self.runtime.stop_container(cid, grace)
        except NotFound:
            pass

    async def _collect_garbage(self, state: PodRuntimeState) -> None:
        seen: dict[str, int] = {}
        for cs in state.containers:          # newest first
            if cs.state is ContainerState.RUNNING:
                continue
            n = seen.get(cs.metadata.name, 0)
            seen[cs.metadata.name] = n + 1
            if n >= 1:                       # keep the newest exited instance of each name
                try:
                    await self.runtime.remove_container(cs.id)
                except CRIError as e:
                    log.info("removing old container %s: %s", cs.id, e)

    # --- KillPod ------------------------------------------------------------------------------------
    async def kill_pod(self, pod: dict | None, uid: str, grace: float | None) -> None:
        """Stop the regular containers in parallel, then the sidecars one by one in reverse order
        (each: its preStop, its stop signal, `grace` seconds, SIGKILL), then the sandboxes.

        `pod` None: the pod is no longer to be had (deleted from the API while the agent was
        down). Each container is then stopped as its own labels and annotations say
        (cfg.restore_kill_specs, upstream's restoreSpecsFromContainerLabels): its preStop hook,
        within its pod's grace period (`grace` None) or `grace` if given."""
        state = await self.observe(uid)
        running = [c for c in state.containers
                   if c.state in (ContainerState.RUNNING, ContainerState.CREATED)]

        specs = {c["name"]: (c, f"spec.{key}{{{c['name']}}}")
                 for key in ("initContainers", "containers")
                 for c in ((pod or {}).get("spec") or {}).get(key) or []}
        pod_ip = _pod_ip(state.sandbox) if state.sandbox is not None else None

        async def stop_one(cs: ContainerStatus) -> None:
            if pod is None:
                p, c = cfg.restore_kill_specs(cs.labels, cs.annotations)
                fp = None
            else:
                p, (c, fp) = pod, specs.get(cs.metadata.name, (None, None))
            g = cfg.kill_grace(p) if grace is None else grace
            try:
                await self.kill_container(p, c, cs.id, g,
                                          f"Stopping container {cs.metadata.name}", pod_ip,
                                          fp=fp or f"spec.containers{{{cs.metadata.name}}}")
            except CRIError as e:
                log.warning("stopping container %s: %s", cs.id, e)

        # regular containers first, then the sidecars one by one in reverse order, so that
        # what they serve stays up while the app containers stop (KEP-753)
        order = [c["name"] for c in ((pod or {}).get("spec") or {}).get("initContainers") or []
                 if is_sidecar(c)]
        await asyncio.gather(*(stop_one(c) for c in running if c.metadata.name not in order))
        for name in reversed(order):
            await asyncio.gather(*(stop_one(c) for c in running if c.metadata.name == name))
        for sb in state.sandboxes:
            try:
                await self.runtime.stop_pod_sandbox(sb.id)
            except CRIError as e:
                log.warning("stopping sandbox %s: %s", sb.id, e)

    async def remove_pod(self, uid: str) -> None:
        """Remove the pod's containers, sandboxes and cgroup (after kill_pod)."""
        state = await self.observe(uid)
        for cs in state.containers:
            try:
                await self.runtime.remove_container(cs.id)
            except CRIError as e:
                log.warning("removing container %s: %s", cs.id, e)
        for sb in state.sandboxes:
            try:
                await self.runtime.remove_pod_sandbox(sb.id)
            except CRIError as e:
                log.warning("removing sandbox %s: %s", sb.id, e)
        await asyncio.to_thread(volumes.remove, self.node.pods_dir, uid)
        if self.tokens is not None:
            self.tokens.forget(uid)
        if not await self._remove_cgroup(uid):
            self._cgroups_left.add(uid)          # retried by housekeeping()
        self.backoff.forget(uid)
        self.puller.forget(uid)
        if self._pods is not None:
            self._pods.pop(uid, None)

    async def terminated(self, uid: str) -> None:
        """A finished pod whose containers are all stopped (the kubelet's SyncTerminatedPod): its
        cgroup goes now, not when the pod object is deleted — nothing will run in it again, and
        a node with many finished Jobs' pods would otherwise keep a cgroup (kernel memory, and a
        directory every stats and eviction pass walks) for each. Its containers stay, for their
        status and `kubectl logs`; `remove_pod` takes them when the pod is deleted."""
        if not await self._remove_cgroup(uid):
            self._cgroups_left.add(uid)          # retried by housekeeping()

    async def _remove_cgroup(self, uid: str) -> bool:
        """The pod's cgroup, in a thread: a cgroup whose last process is still leaving is retried
        for a few seconds (rmdir's EBUSY), which must not stall the loop."""
        try:
            await asyncio.to_thread(self.cm.remove_pod, uid)
            return True
        except Exception as e:  # noqa: BLE001 - CgroupError, OSError: tried again later
            log.warning("removing the cgroup of pod %s (will retry): %s", uid, e)
            return False

    async def housekeeping(self) -> None:
        """Finish what remove_pod could not: pod cgroups that were still busy (the kubelet's
        HandlePodCleanups retries them on every housekeeping pass too)."""
        for uid in list(self._cgroups_left):
            if await self._remove_cgroup(uid):
                self._cgroups_left.discard(uid)
