"""The disruption controller against a real API server: a PodDisruptionBudget made with the real
kubectl gets its status (expected, healthy, desired, allowed), the eviction API (the kubernetes
Python client, as `kubectl drain` calls it) spends the allowance and is refused once it is gone,
and the allowance comes back when the evicted pod's replacement is Ready; maxUnavailable as a
percentage follows the Deployment's scale."""

import json

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.unit.controlplane.controllers.conftest import get_json, wait_until
from tests.unit.controlplane.controllers.fakes import FakeKubelet

NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "pdb-node"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
          "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": {
              "metadata": {"labels": {"app": "web"}},
              "spec": {"nodeName": "pdb-node", "containers": [{"name": "c", "image": "busybox"}]}}}}


@pytest.fixture(scope="module", autouse=True)
def controllers(start_controllers):
    return start_controllers("--controllers=disruption,replicaset,deployment")


@pytest.fixture(scope="module")
def kubelet(server):
    with FakeKubelet(server.kubeconfig) as k:  # Ready pods; an evicted pod's deletion confirmed
        yield k


def status(kubectl):
    return get_json(kubectl, "get", "pdb", "web").get("status") or {}


def numbers(st):
    return tuple(st.get(k) for k in ("expectedPods", "currentHealthy", "desiredHealthy", "disruptionsAllowed"))


def live(kubectl):
    return [p["metadata"]["name"] for p in get_json(kubectl, "get", "pods", "-l", "app=web")["items"]
            if not p["metadata"].get("deletionTimestamp")]


def test_budget_status_eviction_and_scale(kubectl, server, kubelet):
    kubectl("create", "-f", "-", input=json.dumps(NODE))
    kubectl("apply", "-f", "-", input=json.dumps(DEPLOY))
    kubectl("rollout", "status", "deployment/web", "--timeout=60s")
    kubectl("create", "pdb", "web", "--selector=app=web", "--min-available=2")
    st = wait_until(lambda: numbers(s := status(kubectl)) == (3, 3, 2, 1) and s, what="the budget's status")
    cond = st["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == ("DisruptionAllowed", "True", "SufficientPods")
    assert st["observedGeneration"] == 1
    assert kubectl("get", "pdb", "web").splitlines()[1].split()[1:4] == ["2", "N/A", "1"]

    v1 = client.CoreV1Api(config.new_client_from_config(config_file=str(server.kubeconfig)))

    def evict(name):
        v1.create_namespaced_pod_eviction(name, "default", client.V1Eviction(
            metadata=client.V1ObjectMeta(name=name, namespace="default")))
    first, second = live(kubectl)[:2]
    evict(first)
    with pytest.raises(ApiException) as e:  # the one allowed disruption is spent
        evict(second)
    assert e.value.status == 429 and "needs 2 healthy pods" in json.loads(e.value.body)["details"]["causes"][0]["message"]
    # the evicted pod goes (the kubelet confirms), its replacement becomes Ready: allowed again
    wait_until(lambda: first not in live(kubectl) and len(live(kubectl)) == 3 and numbers(status(kubectl)) == (3, 3, 2, 1),
               what="the replacement and the allowance back")
    assert not status(kubectl).get("disruptedPods")
    evict(second)

    kubectl("patch", "pdb", "web", "--type=json", "-p", json.dumps([
        {"op": "remove", "path": "/spec/minAvailable"}, {"op": "add", "path": "/spec/maxUnavailable", "value": "50%"}]))
    wait_until(lambda: numbers(status(kubectl)) == (3, 3, 1, 2), what="maxUnavailable 50% of 3 (rounded up)")
    kubectl("scale", "deployment", "web", "--replicas=5")
    wait_until(lambda: numbers(status(kubectl)) == (5, 5, 2, 3), what="the budget following the scale")
    assert status(kubectl)["observedGeneration"] == 2

    kubectl("scale", "deployment", "web", "--replicas=0")
    wait_until(lambda: numbers(s := status(kubectl)) == (0, 0, 0, 0) and s["conditions"][0]["reason"] == "InsufficientPods",
               what="no pods, nothing allowed")
    kubectl("delete", "pdb", "web")
    kubectl("delete", "deployment", "web")
