"""The ReplicaSet controller against a real API server, driven by the real kubectl: replicas kept,
adoption and release by ownerReferences, upstream's choice of which pods to delete."""

import json

import pytest

from tests.unit.controlplane.controllers.conftest import items, set_pod_status, wait_until

RS = """
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: %(name)s}
spec:
  replicas: %(replicas)d
  selector: {matchLabels: {app: %(name)s}}
  template:
    metadata: {labels: {app: %(name)s}}
    spec: {containers: [{name: c, image: busybox}]}
"""


@pytest.fixture(scope="module", autouse=True)
def controllers(start_controllers):
    return start_controllers("--controllers=replicaset")


def pods_of(kubectl, name):
    return [p for p in items(kubectl, "pods", "-l", f"app={name}") if not p["metadata"].get("deletionTimestamp")]


def owned(pods, rs_uid):
    return [p for p in pods if any(r["uid"] == rs_uid and r.get("controller")
                                   for r in p["metadata"].get("ownerReferences") or [])]


def test_replicas_kept_and_status(kubectl):
    kubectl("apply", "-f", "-", input=RS % {"name": "web", "replicas": 3})
    uid = json.loads(kubectl("get", "rs", "web", "-o", "json"))["metadata"]["uid"]
    pods = wait_until(lambda: len(owned(pods_of(kubectl, "web"), uid)) == 3 and pods_of(kubectl, "web"),
                      what="3 pods")
    assert all(p["metadata"]["generateName"] == "web-" for p in pods)
    ref = pods[0]["metadata"]["ownerReferences"][0]
    assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": uid,
                   "controller": True, "blockOwnerDeletion": True}
    for p in pods:
        set_pod_status(kubectl, "default", p["metadata"]["name"])
    wait_until(lambda: json.loads(kubectl("get", "rs", "web", "-o", "json"))["status"].get("readyReplicas") == 3,
               what="readyReplicas 3")
    st = json.loads(kubectl("get", "rs", "web", "-o", "json"))["status"]
    assert st["replicas"] == 3 and st["availableReplicas"] == 3 and st["observedGeneration"] == 1

    kubectl("delete", "pod", pods[0]["metadata"]["name"])
    wait_until(lambda: len(pods_of(kubectl, "web")) == 3 and
               pods[0]["metadata"]["name"] not in [p["metadata"]["name"] for p in pods_of(kubectl, "web")],
               what="a replacement pod")
    # no more than asked for, even after several syncs
    kubectl("scale", "rs", "web", "--replicas=5")
    wait_until(lambda: len(pods_of(kubectl, "web")) == 5, what="5 pods")
    assert len(pods_of(kubectl, "web")) == 5


def test_scale_down_deletes_not_ready_first(kubectl):
    kubectl("apply", "-f", "-", input=RS % {"name": "pick", "replicas": 3})
    pods = wait_until(lambda: len(pods_of(kubectl, "pick")) == 3 and pods_of(kubectl, "pick"), what="3 pods")
    names = sorted(p["metadata"]["name"] for p in pods)
    set_pod_status(kubectl, "default", names[0], ready_since="2020-01-01T00:00:00Z")
    set_pod_status(kubectl, "default", names[1], ready_since="2020-01-01T00:00:00Z")
    set_pod_status(kubectl, "default", names[2], ready=False, phase="Pending")
    wait_until(lambda: json.loads(kubectl("get", "rs", "pick", "-o", "json"))["status"].get("readyReplicas") == 2,
               what="2 ready")
    kubectl("scale", "rs", "pick", "--replicas=2")
    left = wait_until(lambda: len(pods_of(kubectl, "pick")) == 2 and pods_of(kubectl, "pick"), what="2 pods")
    assert sorted(p["metadata"]["name"] for p in left) == names[:2]  # the pending, not-ready one went


def test_adopts_orphans_and_releases_non_matching(kubectl):
    kubectl("run", "stray", "--image=busybox", "--labels=app=adopt")
    kubectl("apply", "-f", "-", input=RS % {"name": "adopt", "replicas": 2})
    uid = json.loads(kubectl("get", "rs", "adopt", "-o", "json"))["metadata"]["uid"]
    pods = wait_until(lambda: len(owned(pods_of(kubectl, "adopt"), uid)) == 2 and pods_of(kubectl, "adopt"),
                      what="2 owned pods")
    assert "stray" in [p["metadata"]["name"] for p in pods]  # adopted, so only one was created
    assert len(pods) == 2
    kubectl("label", "pod", "stray", "app=gone", "--overwrite")  # no longer matches: released
    wait_until(lambda: not json.loads(kubectl("get", "pod", "stray", "-o", "json"))["metadata"].get(
        "ownerReferences"), what="stray released")
    wait_until(lambda: len(owned(pods_of(kubectl, "adopt"), uid)) == 2, what="a replacement for the released pod")
