"""The scheduler's writes to the API: bindings, the PodScheduled condition, and preemption.

    bind                 POST pods/<name>/binding: the decision itself (the server sets
                         spec.nodeName once and the PodScheduled=True condition)
    mark_unschedulable   PodScheduled=False with reason and message, and the pod's
                         status.nominatedNodeName, by a strategic merge patch of pods/status
                         (conditions merge by type); skipped when nothing would change, so a pod
                         retried every few seconds does not write every time
    evict                a preemption victim: condition DisruptionTarget (why the pod went, for
                         its controller), then a graceful delete (the pod's own grace period)
"""

from __future__ import annotations

from datetime import datetime, timezone

from apiclient import PODS, ApiClient, NotFound
from controlplane.scheduler.podinfo import PodInfo


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def bind(api: ApiClient, pod: PodInfo, node: str) -> None:
    await api.create(PODS, {"apiVersion": "v1", "kind": "Binding",
                            "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
                            "target": {"apiVersion": "v1", "kind": "Node", "name": node}},
                     pod.namespace, subresource="binding", name=pod.name)


def _condition(pod: dict, type_: str) -> dict | None:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == type_:
            return c
    return None


async def mark_unschedulable(api: ApiClient, pod: dict, reason: str, message: str,
                             nominated: str | None = None) -> None:
    """nominated: None leaves status.nominatedNodeName alone, "" clears it."""
    md = pod.get("metadata") or {}
    name, namespace = md.get("name", ""), md.get("namespace") or "default"
    current_nominated = (pod.get("status") or {}).get("nominatedNodeName") or ""
    cur = _condition(pod, "PodScheduled")
    same = (cur is not None and cur.get("status") == "False" and cur.get("reason") == reason
            and cur.get("message") == message)
    nnn_same = nominated is None or nominated == current_nominated
    if same and nnn_same:
        return
    status: dict = {}
    if not same:
        status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": reason,
                                 "message": message, "lastProbeTime": None,
                                 "lastTransitionTime": cur.get("lastTransitionTime")
                                 if cur is not None and cur.get("status") == "False" else _now()}]
    if not nnn_same:
        status["nominatedNodeName"] = nominated or None
    try:
        await api.patch(PODS, name, {"status": status}, namespace, type="strategic",
                        subresource="status")
    except NotFound:
        pass


async def evict(api: ApiClient, victim: PodInfo, component: str) -> None:
    try:
        await api.patch(PODS, victim.name, {"status": {"conditions": [{
            "type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
            "message": f"{component}: preempting to accommodate a higher priority pod",
            "lastTransitionTime": _now()}]}}, victim.namespace, type="strategic", subresource="status")
        await api.delete(PODS, victim.name, victim.namespace, uid=victim.uid)
    except NotFound:
        pass
