"""A pod's status, computed from what the runtime has (the kubelet's generateAPIPodStatus).

Input: the pod (spec and the status it has now), the runtime's sandboxes and containers for it
(kuberuntime.PodRuntimeState) and the last sync's waiting reasons. Output: the `status` object the
status manager (status.py) writes. Nothing here talks to the API or the runtime.

Containers. For each container of the spec, its newest runtime instance gives `state`
(running / terminated with exit code, reason and times); the one before gives `lastState`;
`restartCount` is the newest instance's attempt number. A container the last sync could not
start, or is holding back, is `waiting` with that reason (ContainerCreating, CrashLoopBackOff,
ErrImagePull, CreateContainerConfigError, ...), with its last exit kept in `lastState`.

Phase (getPhase): Pending until the init containers are done and every app container has run;
Running while any container runs or will be restarted; with every container terminated and none
to restart, Succeeded if all exited 0, else Failed.

Conditions: PodScheduled (the scheduler's; kept), PodReadyToStartContainers (the sandbox has its
network), Initialized, ContainersReady and Ready, with the kubelet's reasons and messages.
"""

from __future__ import annotations

from datetime import datetime, timezone

from nodeagent.cri.api import ContainerState, ContainerStatus, SandboxState
from nodeagent.kuberuntime.config import TERMINATION_LOG_HOST, TERMINATION_MESSAGE_POLICY
from nodeagent.kuberuntime.manager import PodRuntimeState, SyncResult, is_sidecar, should_restart
from nodeagent.resources import qos_class

OWNED_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")
MAX_MESSAGE = 4096        # the kubelet's limit on a termination message
FALLBACK_LINES = 80


def rfc3339(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str | None) -> float | None:
    """The inverse of rfc3339 (None for None or a malformed time)."""
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


def _termination_message(cs: ContainerStatus) -> str:
    path = cs.annotations.get(TERMINATION_LOG_HOST)
    msg = ""
    if path:
        try:
            with open(path, "rb") as f:
                msg = f.read(MAX_MESSAGE).decode(errors="replace")
        except OSError:
            pass
    if not msg and cs.exit_code not in (0, None) and \
            cs.annotations.get(TERMINATION_MESSAGE_POLICY) == "FallbackToLogsOnError":
        msg = _log_tail(cs.log_path)
    return msg or cs.message


def _log_tail(path: str) -> str:
    """The last lines of a CRI-format log ("<time> <stream> <P|F> <text>"), as text."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            lines = f.read().decode(errors="replace").splitlines()[-FALLBACK_LINES:]
    except OSError:
        return ""
    out = []
    for line in lines:
        parts = line.split(" ", 3)
        if len(parts) == 4:
            out.append(parts[3] + ("\n" if parts[2] == "F" else ""))
    return "".join(out)[-2048:]


def _terminated(cs: ContainerStatus, runtime_name: str) -> dict:
    code = cs.exit_code if cs.exit_code is not None else 0
    reason = cs.reason or ("Completed" if code == 0 else "Error")
    t = {"exitCode": code, "reason": reason, "startedAt": rfc3339(cs.started_at),
         "finishedAt": rfc3339(cs.finished_at), "containerID": f"{runtime_name}://{cs.id}"}
    msg = _termination_message(cs)
    if msg:
        t["message"] = msg
    return t


def container_status(spec: dict, state: PodRuntimeState, result: SyncResult, runtime_name: str,
                     default_reason: str, prober=None, old: dict | None = None) -> dict:
    """`old`: this container's status as the pod has it now. One the runtime has no record of
    keeps a terminated state from there, or else its restartCount and lastState (the kubelet's
    convertToAPIContainerStatuses): a finished pod stays as it ended when its containers are
    gone, e.g. after the node was taken down and up again."""
    name = spec["name"]
    instances = state.of(name)
    newest = instances[0] if instances else None
    if newest is None and old:
        if (old.get("state") or {}).get("terminated") and name not in result.waiting:
            return old
        kept = container_status(spec, state, result, runtime_name, default_reason, prober)
        kept["restartCount"] = old.get("restartCount", 0)
        kept["lastState"] = old.get("lastState") or {}
        return kept
    out = {"name": name, "image": spec.get("image", ""), "imageID": "", "ready": False,
           "restartCount": newest.metadata.attempt if newest else 0, "started": False,
           "state": {}, "lastState": {}}
    previous = [c for c in instances[1:] if c.state is ContainerState.EXITED]
    if newest is not None:
        out["image"] = newest.image or out["image"]   # what it runs (an update may be pending)
        out["imageID"] = newest.image_ref
        out["containerID"] = f"{runtime_name}://{newest.id}"
    waiting = result.waiting.get(name)
    if newest is not None and newest.state is ContainerState.RUNNING:
        out["state"] = {"running": {"startedAt": rfc3339(newest.started_at)}}
        out["ready"] = prober.ready(spec, newest.id) if prober else True
        out["started"] = prober.started(spec, newest.id) if prober else True
        if previous:
            out["lastState"] = {"terminated": _terminated(previous[0], runtime_name)}
    elif newest is not None and newest.state is ContainerState.EXITED and waiting is None:
        out["state"] = {"terminated": _terminated(newest, runtime_name)}
        if previous:
            out["lastState"] = {"terminated": _terminated(previous[0], runtime_name)}
    else:
        reason, message = waiting or (default_reason, "")
        out["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        if newest is not None and newest.state is ContainerState.EXITED:
            out["lastState"] = {"terminated": _terminated(newest, runtime_name)}
    if not out["imageID"]:
        out.pop("imageID")
    return out


def _sidecar_names(pod: dict) -> set[str]:
    return {c["name"] for c in (pod.get("spec") or {}).get("initContainers") or [] if is_sidecar(c)}


def _sidecar_up(s: dict) -> bool:
    """A sidecar counts as started: running and past its startupProbe, or it has run before
    (one that crashed later does not take the pod back to initializing)."""
    if "running" in s["state"]:
        return bool(s.get("started"))
    return bool(s.get("lastState", {}).get("terminated") or s["state"].get("terminated"))


def _init_done(pod: dict, init_statuses: list[dict]) -> bool:
    sidecars = _sidecar_names(pod)
    return all(_sidecar_up(s) if s["name"] in sidecars
               else (s["state"].get("terminated") or {}).get("exitCode") == 0 for s in init_statuses)


def phase(pod: dict, init_statuses: list[dict], statuses: list[dict]) -> str:
    """getPhase. Sidecars (restartable init containers) never fail the pod nor finish it: a
    running one counts as running, a terminated one is ignored."""
    spec = pod.get("spec") or {}
    policy = spec.get("restartPolicy") or "Always"
    sidecars = _sidecar_names(pod)
    for s in init_statuses:
        term = s["state"].get("terminated")
        if term and term["exitCode"] != 0 and policy == "Never" and s["name"] not in sidecars:
            return "Failed"
    if not _init_done(pod, init_statuses):
        return "Pending"
    running = waiting = stopped = succeeded = 0
    running += sum(1 for s in init_statuses if s["name"] in sidecars and "running" in s["state"])
    for s in statuses:
        st = s["state"]
        if "running" in st:
            running += 1
        elif "terminated" in st:
            stopped += 1
            if st["terminated"]["exitCode"] == 0:
                succeeded += 1
        elif s.get("lastState", {}).get("terminated"):
            stopped += 1            # waiting to be restarted: it has run
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if policy == "Always":
            return "Running"
        if policy == "OnFailure":
            return "Succeeded" if stopped == succeeded else "Running"
        return "Succeeded" if stopped == succeeded else "Failed"
    return "Pending"


def _condition(type_: str, ok: bool, reason: str = "", message: str = "") -> dict:
    c = {"type": type_, "status": "True" if ok else "False", "lastProbeTime": None}
    if not ok and reason:
        c["reason"] = reason
    if not ok and message:
        c["message"] = message
    return c


def generate(pod: dict, state: PodRuntimeState, result: SyncResult, *, host_ip: str,
             runtime_name: str, now: float, prober=None) -> dict:
    """The pod's new status (the parts the kubelet owns, plus the conditions it keeps)."""
    spec, old = pod.get("spec") or {}, pod.get("status") or {}
    has_sandbox_net = state.sandbox is not None and state.sandbox.state is SandboxState.READY
    init_specs = spec.get("initContainers") or []
    before = {s.get("name"): s for key in ("initContainerStatuses", "containerStatuses")
              for s in old.get(key) or []}
    init_statuses = [container_status(c, state, result, runtime_name, "PodInitializing",
                                      prober if is_sidecar(c) else None, before.get(c["name"]))
                     for c in init_specs]
    init_done = _init_done(pod, init_statuses)
    statuses = [container_status(c, state, result, runtime_name,
                                 "ContainerCreating" if init_done else "PodInitializing", prober,
                                 before.get(c["name"]))
                for c in spec.get("containers") or []]
    sidecars = _sidecar_names(pod)
    for s in init_statuses:
        if s["name"] in sidecars:             # a sidecar is ready as an app container is
            s["ready"] = s["ready"] and "running" in s["state"]
        else:                                 # an init container is "ready" once it succeeded
            s["ready"] = (s["state"].get("terminated") or {}).get("exitCode") == 0
    ph = phase(pod, init_statuses, statuses)
    if old.get("phase") in ("Succeeded", "Failed"):
        ph = old["phase"]                     # terminal is terminal (the kubelet never goes back)

    unready = [s["name"] for s in init_statuses + statuses
               if not s["ready"] and (s["name"] in sidecars or s in statuses)]
    pending_init = [s["name"] for s in init_statuses
                    if not (_sidecar_up(s) if s["name"] in sidecars else s["ready"])]
    if ph == "Succeeded":
        ready_reason, ready_msg = "PodCompleted", ""
    else:
        ready_reason = "ContainersNotReady"
        ready_msg = f"containers with unready status: [{' '.join(unready)}]"
    conds = [
        _condition("PodReadyToStartContainers", has_sandbox_net),
        _condition("Initialized", init_done or ph == "Succeeded",
                   "PodCompleted" if ph == "Succeeded" else "ContainersNotInitialized",
                   "" if ph == "Succeeded" else
                   f"containers with incomplete status: [{' '.join(pending_init)}]"),
        _condition("Ready", not unready and ph != "Succeeded", ready_reason, ready_msg),
        _condition("ContainersReady", not unready and ph != "Succeeded", ready_reason, ready_msg),
    ]
    status: dict = {"phase": ph, "hostIP": host_ip, "hostIPs": [{"ip": host_ip}] if host_ip else [],
                    "qosClass": qos_class(pod),
                    "startTime": old.get("startTime") or rfc3339(now),
                    "containerStatuses": statuses}
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    if spec.get("ephemeralContainers"):
        # kubectl debug's containers: never ready, no probes, not part of the phase
        olds = {s.get("name"): s for s in (old.get("ephemeralContainerStatuses") or [])}
        ephemeral = [container_status(c, state, result, runtime_name, "ContainerCreating",
                                      old=olds.get(c["name"])) for c in spec["ephemeralContainers"]]
        for s in ephemeral:
            s["ready"] = False
            s.pop("started", None)
        status["ephemeralContainerStatuses"] = ephemeral
    sb = state.sandbox
    if spec.get("hostNetwork"):
        status["podIP"], status["podIPs"] = host_ip, [{"ip": host_ip}]
    elif sb is not None and sb.ip:
        status["podIP"] = sb.ip
        status["podIPs"] = [{"ip": sb.ip}] + [{"ip": i} for i in sb.additional_ips]
    elif old.get("podIP"):
        status["podIP"], status["podIPs"] = old["podIP"], old.get("podIPs") or [{"ip": old["podIP"]}]
    status["conditions"] = merge_conditions(old.get("conditions") or [], conds, now, spec)
    return status


def merge_conditions(old: list[dict], ours: list[dict], now: float, spec: dict) -> list[dict]:
    """Ours replace our types; others' (readiness gates, DisruptionTarget...) stay. A condition
    whose status did not change keeps its lastTransitionTime. The order is the kubelet's
    (generateAPIPodStatus): others', then PodReadyToStartContainers, Initialized, Ready,
    ContainersReady, then PodScheduled (the scheduler's, as it wrote it)."""
    before = {c.get("type"): c for c in old}
    out = [c for c in old if c.get("type") not in OWNED_CONDITIONS and c.get("type") != "PodScheduled"]
    for c in ours:
        prev = before.get(c["type"])
        keep = prev is not None and prev.get("status") == c["status"] and prev.get("lastTransitionTime")
        c["lastTransitionTime"] = prev["lastTransitionTime"] if keep else rfc3339(now)
        out.append(c)
    if "PodScheduled" in before:
        out.append(before["PodScheduled"])
    elif spec.get("nodeName"):
        out.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                    "lastTransitionTime": rfc3339(now)})
    return out


def terminal(pod: dict, state: PodRuntimeState) -> bool:
    """Nothing more will run: every container exited for good (used to stop the sandbox)."""
    spec = pod.get("spec") or {}
    policy = spec.get("restartPolicy") or "Always"
    for c in spec.get("initContainers") or []:
        cs = state.latest(c["name"])
        if cs is not None and cs.state is ContainerState.EXITED and cs.exit_code != 0 \
                and policy == "Never" and not is_sidecar(c):
            return True
    apps = spec.get("containers") or []
    for c in apps:
        cs = state.latest(c["name"])
        if cs is None or cs.state is not ContainerState.EXITED or should_restart(policy, cs.exit_code):
            return False
    return bool(apps)
