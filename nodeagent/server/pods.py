"""From the names in a URL (namespace, pod, container) to the runtime's ids.

The kubelet API is handed a *pods provider*: a callable returning the pods this agent runs, as
API objects (dicts) with the status the agent last computed. That status already says which
runtime container is each container's current one (`containerStatuses[].containerID`, as
"<runtime>://<id>") and which one ran before the last restart (`lastState.terminated.containerID`)
— the same facts the real kubelet reads from its status manager to serve logs and exec.
Sandboxes (for port-forward) are found through the runtime, by the pod's uid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from nodeagent.cri.api import RuntimeService, SandboxState
from nodeagent.server.errors import bad_request, not_found

PodsProvider = Callable[[], Iterable[dict]]


def _strip(container_id: str) -> str:
    return container_id.split("://", 1)[-1]


def find_pod(pods: PodsProvider, namespace: str, name: str) -> dict:
    for pod in pods():
        md = pod.get("metadata") or {}
        if md.get("name") == name and (md.get("namespace") or "default") == namespace:
            return pod
    raise not_found(f'pod "{name}" not found')


def _all_statuses(pod: dict) -> list[dict]:
    st = pod.get("status") or {}
    return (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []) + \
        (st.get("ephemeralContainerStatuses") or [])


def container_name(pod: dict, container: str) -> str:
    """The container to use when the URL names none: the only one, as upstream requires."""
    if container:
        return container
    names = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    if len(names) == 1:
        return names[0]
    raise bad_request(f"a container name must be specified for pod {pod['metadata']['name']}, "
                      f"choose one of: [{' '.join(names)}]")


def container_id(pod: dict, container: str, previous: bool = False) -> str:
    """The runtime id of the container's current (or, with previous, last terminated) instance."""
    pod_name = pod["metadata"]["name"]
    container = container_name(pod, container)
    for cs in _all_statuses(pod):
        if cs.get("name") != container:
            continue
        if previous:
            last = (cs.get("lastState") or {}).get("terminated") or {}
            if not last.get("containerID"):
                raise bad_request(f'previous terminated container "{container}" in pod '
                                  f'"{pod_name}" not found')
            return _strip(last["containerID"])
        state = cs.get("state") or {}
        if "waiting" in state and not cs.get("containerID"):
            reason = (state["waiting"] or {}).get("reason", "")
            raise bad_request(f'container "{container}" in pod "{pod_name}" is waiting to start: '
                              f"{reason or 'ContainerCreating'}")
        if not cs.get("containerID"):
            break
        return _strip(cs["containerID"])
    known = [c["name"] for key in ("containers", "initContainers")
             for c in (pod.get("spec") or {}).get(key) or []]
    if container not in known:
        raise bad_request(f"container {container} is not valid for pod {pod_name}")
    raise bad_request(f'container "{container}" in pod "{pod_name}" is not available')


async def sandbox_id(runtime: RuntimeService, pod: dict) -> str:
    uid = pod["metadata"].get("uid", "")
    md = pod["metadata"]
    for sb in await runtime.list_pod_sandboxes():
        if sb.state is SandboxState.READY and (sb.metadata.uid == uid or (
                not uid and sb.metadata.name == md["name"] and sb.metadata.namespace == md.get("namespace"))):
            return sb.id
    raise not_found(f'pod "{md["name"]}" has no running sandbox')
