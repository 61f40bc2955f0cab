"""Pod GC: terminated pods beyond the threshold (oldest first), pods bound to a deleted node, and
terminating pods on an out-of-service node are removed."""

import json
import time

import pytest

from tests.unit.controlplane.controllers.conftest import get_json, maybe_json, set_pod_status, wait_until
from tests.unit.controlplane.controllers.fakes import FakeNodes


@pytest.fixture(scope="module", autouse=True)
def controllers(start_controllers):
    return start_controllers("--controllers=podgc", "--terminated-pod-gc-threshold=2", "--podgc-period=0.5")


def pod(name, node=None):
    spec = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})


def exists(kubectl, name):
    return kubectl.run("get", "pod", name, check=False).returncode == 0


def test_terminated_over_threshold_oldest_first(kubectl):
    for i in range(4):
        kubectl("apply", "-f", "-", input=pod(f"done-{i}"))
        set_pod_status(kubectl, "default", f"done-{i}", ready=False, phase="Succeeded")
        time.sleep(1.1)  # distinct creationTimestamps (second precision)
    wait_until(lambda: not exists(kubectl, "done-0") and not exists(kubectl, "done-1"), what="two oldest gone")
    assert exists(kubectl, "done-2") and exists(kubectl, "done-3")


def test_pods_on_deleted_or_out_of_service_nodes(kubectl, server):
    with FakeNodes(server.kubeconfig) as nodes:
        nodes.add("keep")
        nodes.add("down")
        kubectl("apply", "-f", "-", input=pod("on-ghost", "ghost"))
        kubectl("apply", "-f", "-", input=pod("on-keep", "keep"))
        kubectl("apply", "-f", "-", input=pod("on-down", "down"))
        wait_until(lambda: not exists(kubectl, "on-ghost"), what="the pod of a node that does not exist")
        assert exists(kubectl, "on-keep")
        kubectl("delete", "pod", "on-down", "--wait=false")  # graceful: waits for a kubelet that is gone
        time.sleep(1.5)
        assert get_json(kubectl, "get", "pod", "on-down")["metadata"]["deletionTimestamp"]
        nodes.stop("down")
        kubectl("patch", "node", "down", "--subresource=status", "--type=merge", "-p", json.dumps({"status": {
            "conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]}}))
        kubectl("taint", "node", "down", "node.kubernetes.io/out-of-service=nodeshutdown:NoExecute")
        wait_until(lambda: maybe_json(kubectl, "get", "pod", "on-down") is None, what="out-of-service pod removed")
        assert exists(kubectl, "on-keep")
