"""The STATUS column of `kubectl get pods` (server-side Table), against upstream's printPod."""

import json
import urllib.request

import pytest


@pytest.fixture
def pod(kubectl, request):
    """A pod whose status the test sets through the status subresource; deleted afterwards."""
    name = request.node.name.replace("_", "-")[5:40].rstrip("-")

    def make(status, init=(), meta=None, **spec):
        obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **(meta or {})},
               "spec": {"containers": [{"name": "c", "image": "busybox"}],
                        "initContainers": list(init), **spec}}
        kubectl("create", "-f", "-", input=json.dumps(obj))
        kubectl("patch", "pod", name, "--subresource=status", "--type=merge", "-p",
                json.dumps({"status": status}))
        return name
    yield make
    kubectl.run("patch", "pod", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}',
                check=False)
    kubectl.run("delete", "pod", name, "--grace-period=0", "--force", check=False)


def columns(kubectl, name):
    line = kubectl("get", "pod", name, "--no-headers").split()
    return line[1], line[2], line[3]                    # READY, STATUS, RESTARTS


def running(name="c", ready=True, restarts=0):
    return {"name": name, "ready": ready, "restartCount": restarts, "image": "busybox",
            "imageID": "", "started": True, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}


def test_evicted_pod_shows_its_reason(kubectl, pod):
    name = pod({"phase": "Failed", "reason": "Evicted",
                "message": "The node was low on resource: memory.",
                "containerStatuses": [{"name": "c", "ready": False, "restartCount": 0, "image": "busybox",
                                       "imageID": "", "state": {"terminated": {
                                           "exitCode": 137, "reason": "ContainerStatusUnknown"}}}]})
    assert columns(kubectl, name) == ("0/1", "ContainerStatusUnknown", "0")


def test_evicted_pod_without_container_statuses(kubectl, pod, server):
    name = pod({"phase": "Failed", "reason": "Evicted"})
    assert columns(kubectl, name) == ("0/1", "Evicted", "0")
    # a terminal pod being deleted keeps its reason (not Terminating); kubectl marks its row
    kubectl("patch", "pod", name, "--type=merge", "-p", '{"metadata":{"finalizers":["x/y"]}}')
    kubectl("delete", "pod", name, "--wait=false")
    assert columns(kubectl, name)[1] == "Evicted"
    req = urllib.request.Request(f"{server.url}/api/v1/namespaces/default/pods/{name}", headers={
        "Authorization": f"Bearer {server.token}",
        "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    with urllib.request.urlopen(req, context=server.ssl_context()) as r:
        table = json.load(r)
    kubectl("patch", "pod", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    assert table["rows"][0]["conditions"] == [{"type": "Completed", "status": "True",
                                               "reason": "Failed", "message": "The pod failed."}]


def test_running_and_terminating(kubectl, pod):
    name = pod({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [running()]},
               meta={"finalizers": ["x/y"]})
    assert columns(kubectl, name) == ("1/1", "Running", "0")
    kubectl("delete", "pod", name, "--wait=false")
    assert columns(kubectl, name)[1] == "Terminating"
    kubectl("patch", "pod", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')


def test_scheduling_gated(kubectl, pod):
    name = pod({"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]},
        schedulingGates=[{"name": "example.com/gate"}])
    assert columns(kubectl, name) == ("0/1", "SchedulingGated", "0")


def test_sidecar_counts_as_a_container(kubectl, pod):
    sidecar = {"name": "side", "image": "busybox", "restartPolicy": "Always"}
    name = pod({"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"},
                                                   {"type": "Ready", "status": "True"}],
                "initContainerStatuses": [running("side", restarts=2)],
                "containerStatuses": [running()]}, init=[sidecar])
    ready, status, restarts = columns(kubectl, name)
    assert (ready, status, restarts) == ("2/2", "Running", "2")


def test_running_container_not_ready_is_not_counted(kubectl, pod):
    # printPod counts a container as running only when it is ready too
    name = pod({"phase": "Running", "containerStatuses": [running(ready=False)]})
    assert columns(kubectl, name) == ("0/1", "Running", "0")
