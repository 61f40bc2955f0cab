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


def retries(controllers, key):
    """The backoff delays the controller logged for `key`, in order."""
    return [float(line.rsplit("(retry in ", 1)[1].rstrip("s)"))
            for line in controllers.text().splitlines() if f"replicaset {key}: " in line and "(retry in " in line]


def test_failing_object_backs_off_and_others_are_served(kubectl, controllers):
    """A ReplicaSet whose pods the API refuses (its template names a PriorityClass that does not
    exist: 403 from admission) is retried with a doubling delay, its failure shown once as the
    ReplicaFailure condition and FailedCreate events, and is not rewritten on every retry; the
    other ReplicaSets are served meanwhile; once the class exists, its pods are made."""
    broken = (RS % {"name": "broken", "replicas": 2}).replace(
        "spec: {containers:", "spec: {priorityClassName: missing-class, containers:")
    kubectl("apply", "-f", "-", input=broken)
    kubectl("apply", "-f", "-", input=RS % {"name": "fine", "replicas": 2})
    wait_until(lambda: len(pods_of(kubectl, "fine")) == 2, what="the other ReplicaSet's pods")

    def failure():
        rs = json.loads(kubectl("get", "rs", "broken", "-o", "json"))
        cond = [c for c in rs["status"].get("conditions") or [] if c["type"] == "ReplicaFailure"]
        return (rs, cond[0]) if cond else None
    rs, cond = wait_until(failure, what="the ReplicaFailure condition")
    assert cond["reason"] == "FailedCreate" and "no PriorityClass with name missing-class was found" in cond["message"]
    assert "ReplicaFailure" in kubectl("describe", "rs", "broken")
    n = len(retries(controllers, "default/broken"))
    # Three more retries take the next three delays, under 5 ms * 2**(n+3) in all: on a loaded
    # machine n is larger by the time the condition is read, and the backoff itself outgrows 30 s.
    wait_until(lambda: len(retries(controllers, "default/broken")) >= max(n + 3, 7),
               timeout=30 + 0.005 * 2 ** (n + 3), what="more retries")
    delays = retries(controllers, "default/broken")
    # 5 ms doubling, per key; the log prints 3 significant figures (10.24 s is "10.2s").
    assert all(b == pytest.approx(2 * a, rel=0.01) for a, b in zip(delays, delays[1:])), delays
    later = json.loads(kubectl("get", "rs", "broken", "-o", "json"))
    assert later["metadata"]["resourceVersion"] == rs["metadata"]["resourceVersion"]  # not rewritten per retry
    assert later["status"]["conditions"] == rs["status"]["conditions"]
    failed = [e for e in items(kubectl, "events") if e["reason"] == "FailedCreate"
              and e["involvedObject"]["name"] == "broken"]
    assert failed and "missing-class" in failed[0]["message"]

    kubectl("apply", "-f", "-", input=RS % {"name": "fine", "replicas": 3})  # still served
    wait_until(lambda: len(pods_of(kubectl, "fine")) == 3, what="the scaled ReplicaSet's pod")
    kubectl("create", "priorityclass", "missing-class", "--value=100")
    wait_until(lambda: len(pods_of(kubectl, "broken")) == 2, timeout=60, what="the fixed ReplicaSet's pods")
    wait_until(lambda: failure() is None, what="the ReplicaFailure condition to go")
    assert controllers.proc.poll() is None
    kubectl("delete", "rs", "broken", "fine")  # no garbage collector here: the pods stay
    kubectl("delete", "pods", "-l", "app in (broken,fine)")
    kubectl("delete", "priorityclass", "missing-class")
