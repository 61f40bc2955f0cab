"""StatefulSets: web-0, web-1, web-2 created in order, each only once the one before is Ready;
scale down from the highest ordinal; stable names, hostnames and claims; Parallel; a rolling
update with a partition."""

import json

import pytest

from tests.unit.controlplane.controllers.conftest import get_json, items, wait_until
from tests.unit.controlplane.controllers.fakes import FakeKubelet

STS = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: %(name)s}
spec:
  serviceName: %(name)s
  replicas: %(replicas)d
  podManagementPolicy: %(policy)s
  selector: {matchLabels: {app: %(name)s}}
  template:
    metadata: {labels: {app: %(name)s}}
    spec: {containers: [{name: c, image: "busybox:1"}]}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""


@pytest.fixture(scope="module", autouse=True)
def controllers(start_controllers):
    return start_controllers("--controllers=statefulset")


@pytest.fixture(scope="module")
def kubelet(server):
    allowed = set()
    with FakeKubelet(server.kubeconfig, make_ready=lambda p: p["metadata"]["name"] in allowed or "*" in allowed) as k:
        k.allowed = allowed
        yield k


def poke(kubectl, pod):
    """Any change makes the fake kubelet look at the pod again (it acts on events)."""
    kubectl("annotate", "pod", pod, "poke=1", "--overwrite")


def names(kubectl, app):
    return sorted(p["metadata"]["name"] for p in items(kubectl, "pods", "-l", f"app={app}")
                  if not p["metadata"].get("deletionTimestamp"))


def test_ordered_creation_and_scale_down(kubectl, kubelet):
    kubectl("apply", "-f", "-", input=STS % {"name": "web", "replicas": 3, "policy": "OrderedReady"})
    wait_until(lambda: names(kubectl, "web") == ["web-0"], what="web-0 first")
    import time
    time.sleep(1)
    assert names(kubectl, "web") == ["web-0"]  # web-1 waits for web-0 to be Ready
    kubelet.allowed.add("web-0")
    poke(kubectl, "web-0")
    wait_until(lambda: names(kubectl, "web") == ["web-0", "web-1"], what="web-1 after web-0 is ready")
    kubelet.allowed.add("web-1")
    poke(kubectl, "web-1")
    wait_until(lambda: names(kubectl, "web") == ["web-0", "web-1", "web-2"], what="web-2 last")
    p = get_json(kubectl, "get", "pod", "web-2")
    assert p["spec"]["hostname"] == "web-2" and p["spec"]["subdomain"] == "web"
    assert p["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "web-2"
    assert p["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "2"
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-2"}} in p["spec"]["volumes"]
    if "persistentvolumeclaims" in kubectl("api-resources", "-o", "name").split():  # served: claims made
        claims = items(kubectl, "pvc")
        assert sorted(c["metadata"]["name"] for c in claims if c["metadata"]["name"].startswith("data-web")) == \
            ["data-web-0", "data-web-1", "data-web-2"]
    kubelet.allowed.add("*")
    poke(kubectl, "web-2")
    kubectl("rollout", "status", "sts/web", "--timeout=30s")
    kubectl("scale", "sts", "web", "--replicas=1")
    wait_until(lambda: names(kubectl, "web") == ["web-0"], what="scaled down from the top")
    assert kubectl.run("get", "pvc", "data-web-2", check=False).returncode == 0  # claims are kept


def test_parallel_and_partitioned_rolling_update(kubectl, kubelet):
    kubelet.allowed.add("*")
    kubectl("apply", "-f", "-", input=STS % {"name": "par", "replicas": 3, "policy": "Parallel"})
    wait_until(lambda: names(kubectl, "par") == ["par-0", "par-1", "par-2"], what="all three at once")
    kubectl("rollout", "status", "sts/par", "--timeout=30s")
    kubectl("patch", "sts", "par", "--type=merge", "-p", json.dumps({"spec": {
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}}}))
    kubectl("set", "image", "sts/par", "c=busybox:2")

    def images():
        return {p["metadata"]["name"]: p["spec"]["containers"][0]["image"]
                for p in items(kubectl, "pods", "-l", "app=par") if not p["metadata"].get("deletionTimestamp")}
    wait_until(lambda: images() == {"par-0": "busybox:1", "par-1": "busybox:2", "par-2": "busybox:2"},
               what="ordinals >= partition updated, par-0 kept")
    st = wait_until(lambda: (s := get_json(kubectl, "get", "sts", "par")["status"]).get("updatedReplicas") == 2 and s,
                    what="status")
    assert st["currentRevision"] != st["updateRevision"]
    kubectl("patch", "sts", "par", "--type=merge", "-p", '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}')
    wait_until(lambda: set(images().values()) == {"busybox:2"} and len(images()) == 3, what="par-0 updated too")
    wait_until(lambda: (s := get_json(kubectl, "get", "sts", "par")["status"])["currentRevision"] == s["updateRevision"],
               what="update revision becomes current")
