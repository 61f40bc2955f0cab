"""The Deployment controller (with the ReplicaSet controller) against a real API server, driven by
the real kubectl: create, scale, a rolling update observed event by event to stay within maxSurge
and maxUnavailable, `rollout status/history/undo/pause/resume/restart`, Recreate, and the progress
deadline. A fake kubelet (fakes.py) marks pods Ready through the status API."""

import json

import pytest

from tests.unit.controlplane.controllers.conftest import get_json, wait_until
from tests.unit.controlplane.controllers.fakes import FakeKubelet


@pytest.fixture(scope="module", autouse=True)
def controllers(start_controllers):
    return start_controllers("--controllers=replicaset,deployment")


@pytest.fixture(scope="module")
def kubelet(server):
    with FakeKubelet(server.kubeconfig, make_ready=lambda p: "slow" not in (p["metadata"].get("labels") or {})) as k:
        yield k


def live(pods, app):
    return [p for p in pods.values() if (p["metadata"].get("labels") or {}).get("app") == app
            and not p["metadata"].get("deletionTimestamp")]


def ready(p):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])


def image_of(p):
    return p["spec"]["containers"][0]["image"]


def test_create_scale_rolling_update_undo(kubectl, kubelet):
    kubectl("create", "deployment", "web", "--image=busybox:1", "--replicas=3")
    out = kubectl("rollout", "status", "deployment/web", "--timeout=60s")
    assert 'deployment "web" successfully rolled out' in out
    d = get_json(kubectl, "get", "deploy", "web")
    assert d["status"]["availableReplicas"] == 3 and d["status"]["updatedReplicas"] == 3
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    conds = {c["type"]: c for c in d["status"]["conditions"]}
    assert conds["Available"]["status"] == "True" and conds["Progressing"]["reason"] == "NewReplicaSetAvailable"

    kubectl("scale", "deployment", "web", "--replicas=5")
    kubectl("rollout", "status", "deployment/web", "--timeout=60s")
    assert get_json(kubectl, "get", "deploy", "web")["status"]["readyReplicas"] == 5

    # maxSurge 25% of 5 → 2 (rounded up), maxUnavailable 25% → 1 (rounded down)
    seen = {"max_total": 0, "min_ready": 99, "events": 0}

    def observe(pods):
        ps = live(pods, "web")
        seen["max_total"] = max(seen["max_total"], len(ps))
        seen["min_ready"] = min(seen["min_ready"], sum(1 for p in ps if ready(p)))
        seen["events"] += 1
    with kubelet.lock:
        kubelet.observers.append(observe)
    try:
        kubectl("set", "image", "deployment/web", "busybox=busybox:2")
        kubectl("rollout", "status", "deployment/web", "--timeout=90s")
    finally:
        with kubelet.lock:
            kubelet.observers.remove(observe)
    with kubelet.lock:
        final = live(kubelet.pods, "web")
    assert sorted(image_of(p) for p in final) == ["busybox:2"] * 5
    print("rolling update seen:", seen)
    assert seen["events"] > 10
    assert seen["max_total"] <= 7, seen
    assert seen["max_total"] > 5, seen  # it did surge
    assert seen["min_ready"] >= 4, seen

    hist = kubectl("rollout", "history", "deployment/web")
    assert "1 " in hist and "2 " in hist
    kubectl("rollout", "undo", "deployment/web")
    kubectl("rollout", "status", "deployment/web", "--timeout=90s")
    d = get_json(kubectl, "get", "deploy", "web")
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    rss = get_json(kubectl, "get", "rs", "-l", "app=web")["items"]
    assert len(rss) == 2  # the first ReplicaSet came back as revision 3; no third one
    by_rev = {r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: r for r in rss}
    assert by_rev["3"]["spec"]["replicas"] == 5 and by_rev["2"]["spec"]["replicas"] == 0
    assert by_rev["3"]["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    with kubelet.lock:
        assert sorted(image_of(p) for p in live(kubelet.pods, "web")) == ["busybox:1"] * 5


def test_pause_resume_restart(kubectl, kubelet):
    kubectl("create", "deployment", "pz", "--image=busybox:1", "--replicas=2")
    kubectl("rollout", "status", "deployment/pz", "--timeout=60s")
    kubectl("rollout", "pause", "deployment/pz")
    kubectl("set", "image", "deployment/pz", "busybox=busybox:2")
    wait_until(lambda: any(c["reason"] == "DeploymentPaused" for c in
                           get_json(kubectl, "get", "deploy", "pz")["status"]["conditions"]),
               what="DeploymentPaused")
    assert len(get_json(kubectl, "get", "rs", "-l", "app=pz")["items"]) == 1  # no rollout while paused
    kubectl("rollout", "resume", "deployment/pz")
    kubectl("rollout", "status", "deployment/pz", "--timeout=60s")
    assert len(get_json(kubectl, "get", "rs", "-l", "app=pz")["items"]) == 2
    kubectl("rollout", "restart", "deployment/pz")
    kubectl("rollout", "status", "deployment/pz", "--timeout=60s")
    rss = get_json(kubectl, "get", "rs", "-l", "app=pz")["items"]
    assert len(rss) == 3 and sorted(r["spec"]["replicas"] for r in rss) == [0, 0, 2]


def test_recreate_never_mixes_versions(kubectl, kubelet):
    kubectl("create", "deployment", "rc", "--image=busybox:1", "--replicas=2")
    kubectl("patch", "deployment", "rc", "--type=merge",
            "-p", json.dumps({"spec": {"strategy": {"type": "Recreate", "rollingUpdate": None}}}))
    kubectl("rollout", "status", "deployment/rc", "--timeout=60s")
    images_together = []

    def observe(pods):
        images_together.append({image_of(p) for p in live(pods, "rc")})
    with kubelet.lock:
        kubelet.observers.append(observe)
    try:
        kubectl("set", "image", "deployment/rc", "busybox=busybox:2")
        kubectl("rollout", "status", "deployment/rc", "--timeout=60s")
    finally:
        with kubelet.lock:
            kubelet.observers.remove(observe)
    assert {"busybox:2"} in images_together
    assert all(len(s) <= 1 for s in images_together), images_together


def test_progress_deadline_makes_rollout_status_fail(kubectl, kubelet):
    kubectl("create", "deployment", "stuck", "--image=busybox:1", "--replicas=1")
    kubectl("label", "deployment", "stuck", "x=y")
    kubectl("patch", "deployment", "stuck", "--type=merge", "-p", json.dumps({"spec": {
        "progressDeadlineSeconds": 3, "template": {"metadata": {"labels": {"slow": "1"}}}}}))
    p = kubectl.run("rollout", "status", "deployment/stuck", "--timeout=60s", check=False)
    assert p.returncode != 0
    assert 'deployment "stuck" exceeded its progress deadline' in p.stderr
    conds = {c["type"]: c for c in get_json(kubectl, "get", "deploy", "stuck")["status"]["conditions"]}
    assert conds["Progressing"]["status"] == "False"
    assert conds["Progressing"]["reason"] == "ProgressDeadlineExceeded"


def test_selector_not_matching_template_is_422_and_nothing_stored(kubectl):
    p = kubectl.run("create", "-v=6", "-f", "-", check=False, input="""
apiVersion: apps/v1
kind: Deployment
metadata: {name: mismatch}
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: b}}
    spec: {containers: [{name: c, image: busybox}]}
""")
    assert p.returncode != 0 and "422 Unprocessable Entity" in p.stderr
    assert 'The Deployment "mismatch" is invalid: spec.template.metadata.labels: Invalid value: ' in p.stderr
    assert "`selector` does not match template `labels`" in p.stderr
    assert kubectl.run("get", "deployment", "mismatch", check=False).returncode == 1
    assert not [rs for rs in get_json(kubectl, "get", "rs")["items"] if rs["metadata"]["name"].startswith("mismatch")]
