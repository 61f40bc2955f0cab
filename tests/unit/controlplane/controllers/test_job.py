"""Jobs: completions 5 with parallelism 2 complete (the test marks pods Succeeded through the
status API, as a kubelet would), never more than 2 pods at once; backoffLimit; Indexed mode;
podFailurePolicy; activeDeadlineSeconds; counting through the tracking finalizer."""

import json
import threading
import time

import pytest

from tests.unit.controlplane.controllers.conftest import get_json, items, wait_until


@pytest.fixture(scope="module", autouse=True)
def controllers(start_controllers):
    return start_controllers("--controllers=job,garbagecollector", "--job-backoff-base=0.2")


def job(name, **spec):
    body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": {
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}},
        **spec}}
    return json.dumps(body)


def job_pods(kubectl, name):
    return items(kubectl, "pods", "-l", f"batch.kubernetes.io/job-name={name}")


def finish(kubectl, pod, phase="Succeeded", exit_code=0):
    st = {"phase": phase, "containerStatuses": [{"name": "c", "image": "busybox", "imageID": "", "ready": False,
                                                  "restartCount": 0, "state": {"terminated": {"exitCode": exit_code}}}]}
    kubectl("patch", "pod", pod["metadata"]["name"], "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": st}))


class Kubelet(threading.Thread):
    """Finishes every running pod of a Job after a moment, recording how many ran at once."""

    def __init__(self, kubectl, name, phase_for=lambda p: "Succeeded"):
        super().__init__(daemon=True)
        self.kubectl, self.name, self.phase_for = kubectl, name, phase_for
        self.max_active, self.stop = 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            active = [p for p in job_pods(self.kubectl, self.name)
                      if p["status"].get("phase") not in ("Succeeded", "Failed")
                      and not p["metadata"].get("deletionTimestamp")]
            self.max_active = max(self.max_active, len(active))
            for p in active[:1]:
                finish(self.kubectl, p, self.phase_for(p))
            time.sleep(0.2)


def conditions(kubectl, name):
    return {c["type"]: c for c in get_json(kubectl, "get", "job", name)["status"].get("conditions") or []}


def test_completions_with_parallelism(kubectl):
    kubectl("apply", "-f", "-", input=job("five", completions=5, parallelism=2))
    k = Kubelet(kubectl, "five")
    k.start()
    try:
        kubectl("wait", "--for=condition=complete", "job/five", "--timeout=60s")
    finally:
        k.stop.set()
        k.join()
    st = get_json(kubectl, "get", "job", "five")["status"]
    assert st["succeeded"] == 5 and st.get("failed", 0) == 0 and st["completionTime"]
    assert st["uncountedTerminatedPods"] == {}
    assert 1 <= k.max_active <= 2
    pods = job_pods(kubectl, "five")
    assert len(pods) == 5 and all(not p["metadata"].get("finalizers") for p in pods)  # counted, released
    c = conditions(kubectl, "five")
    assert c["Complete"]["status"] == "True" and c["SuccessCriteriaMet"]["status"] == "True"


def test_backoff_limit(kubectl):
    kubectl("apply", "-f", "-", input=job("fails", backoffLimit=1))
    k = Kubelet(kubectl, "fails", lambda p: "Failed")
    k.start()
    try:
        kubectl("wait", "--for=condition=failed", "job/fails", "--timeout=60s")
    finally:
        k.stop.set()
        k.join()
    st = get_json(kubectl, "get", "job", "fails")["status"]
    assert st["failed"] == 2  # the first failure was retried once
    assert conditions(kubectl, "fails")["Failed"]["reason"] == "BackoffLimitExceeded"


def test_indexed(kubectl):
    kubectl("apply", "-f", "-", input=job("idx", completions=3, parallelism=3, completionMode="Indexed"))
    pods = wait_until(lambda: len(p := job_pods(kubectl, "idx")) == 3 and p, what="3 indexed pods")
    idx = sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in pods)
    assert idx == ["0", "1", "2"]
    p0 = next(p for p in pods if p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == "0")
    assert p0["spec"]["hostname"] == "idx-0" and p0["metadata"]["name"].startswith("idx-0-")
    assert {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
        "apiVersion": "v1", "fieldPath": "metadata.labels['batch.kubernetes.io/job-completion-index']"}}} \
        in p0["spec"]["containers"][0]["env"]
    finish(kubectl, p0, "Failed", 1)  # index 0 fails: a new pod for index 0
    wait_until(lambda: len(job_pods(kubectl, "idx")) == 4, what="a replacement for index 0")
    for p in job_pods(kubectl, "idx"):
        if p["status"].get("phase") != "Failed":
            finish(kubectl, p)
    kubectl("wait", "--for=condition=complete", "job/idx", "--timeout=30s")
    st = get_json(kubectl, "get", "job", "idx")["status"]
    assert st["completedIndexes"] == "0-2" and st["succeeded"] == 3 and st["failed"] == 1


def test_pod_failure_policy_fail_job(kubectl):
    kubectl("apply", "-f", "-", input=job("pfp", backoffLimit=6, podFailurePolicy={"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In", "values": [42]}}]}))
    pod = wait_until(lambda: job_pods(kubectl, "pfp"), what="a pod")[0]
    finish(kubectl, pod, "Failed", 42)
    kubectl("wait", "--for=condition=failed", "job/pfp", "--timeout=30s")
    c = conditions(kubectl, "pfp")["Failed"]
    assert c["reason"] == "PodFailurePolicy"
    assert c["message"] == (f"Container c for pod default/{pod['metadata']['name']} failed with exit code 42 "
                            "matching FailJob rule at index 0")


def test_active_deadline(kubectl):
    kubectl("apply", "-f", "-", input=job("late", activeDeadlineSeconds=2, parallelism=2, completions=4))
    kubectl("wait", "--for=condition=failed", "job/late", "--timeout=30s")
    assert conditions(kubectl, "late")["Failed"]["reason"] == "DeadlineExceeded"
    wait_until(lambda: all(p["metadata"].get("deletionTimestamp") or p["status"].get("phase") == "Failed"
                           for p in job_pods(kubectl, "late")), what="active pods deleted")


def test_negative_completions_is_422(kubectl):
    p = kubectl.run("apply", "-f", "-", input=job("neg", completions=-1), check=False)
    assert p.returncode != 0 and "spec.completions" in p.stderr
    assert kubectl.run("get", "job", "neg", check=False).returncode == 1


def test_ttl_after_finished(kubectl, start_controllers):
    start_controllers("--controllers=ttl-after-finished", "--leader-elect=false")
    # 5 s, not 1: on a loaded machine a 1 s TTL could delete the Job before `kubectl wait` saw it complete
    kubectl("apply", "-f", "-", input=job("ttl", ttlSecondsAfterFinished=5))
    pod = wait_until(lambda: job_pods(kubectl, "ttl"), what="a pod")[0]
    finish(kubectl, pod)
    kubectl("wait", "--for=condition=complete", "job/ttl", "--timeout=30s")
    kubectl("wait", "--for=delete", "job/ttl", "--timeout=30s")
    wait_until(lambda: not job_pods(kubectl, "ttl"), what="its pods collected with it")


def test_events_come_from_job_controller_once(kubectl):
    """`kubectl describe job` shows From job-controller (upstream's event source), and the
    Completed event once — even when the finishing status write had to be retried."""
    kubectl("apply", "-f", "-", input=job("evs", completions=2, parallelism=2))
    k = Kubelet(kubectl, "evs")
    k.start()
    try:
        kubectl("wait", "--for=condition=complete", "job/evs", "--timeout=60s")
    finally:
        k.stop.set()
        k.join()

    def evs():
        return [e for e in items(kubectl, "events", "--field-selector", "involvedObject.name=evs")
                if e["involvedObject"]["kind"] == "Job"]
    wait_until(lambda: any(e["reason"] == "Completed" for e in evs()), what="a Completed event")
    got = evs()
    assert {e["source"]["component"] for e in got} == {"job-controller"}
    assert {e["reportingComponent"] for e in got} == {"job-controller"}
    completed = [e for e in got if e["reason"] == "Completed"]
    assert len(completed) == 1 and completed[0]["count"] == 1, completed
    assert sum(e["reason"] == "SuccessfulCreate" for e in got) == 2
    out = kubectl("describe", "job", "evs")
    assert "job-controller" in out and "kube-controller-manager" not in out


def test_replacement_waits_the_backoff_after_the_first_failure(kubectl):
    """The pod-failure back-off starts with the first failure (10 s upstream, 0.2 s here), even
    while that failure is still being counted through the tracking finalizer."""
    kubectl("apply", "-f", "-", input=job("slowretry", backoffLimit=3))
    first = wait_until(lambda: job_pods(kubectl, "slowretry"), what="the first pod")[0]
    finish(kubectl, first, "Failed", 1)
    failed_at = time.monotonic()
    wait_until(lambda: len(job_pods(kubectl, "slowretry")) == 2, interval=0.01, what="a replacement")
    assert time.monotonic() - failed_at >= 0.18
