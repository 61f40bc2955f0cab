"""Two replicas of the controllers against one API server: one leads (the Lease
kube-system/kube-controller-manager names it), the other waits; kill the leader and the other
takes over; no pod is ever created twice."""

import signal
import time

import pytest

from tests.unit.controlplane.controllers.conftest import get_json, items, wait_until

FLAGS = ("--controllers=replicaset,deployment", "--leader-elect-lease-duration=6",
         "--leader-elect-renew-deadline=4", "--leader-elect-retry-period=1")


def holder(kubectl):
    lease = kubectl.run("get", "lease", "kube-controller-manager", "-n", "kube-system", "-o", "json", check=False)
    if lease.returncode:
        return None
    import json
    return json.loads(lease.stdout)["spec"].get("holderIdentity")


def test_one_leader_failover_nothing_twice(kubectl, start_controllers):
    a = start_controllers(*FLAGS, "--identity=replica-a")
    b = start_controllers(*FLAGS, "--identity=replica-b")
    first = wait_until(lambda: holder(kubectl), what="a leader")
    kubectl("create", "deployment", "ha", "--image=busybox", "--replicas=3")
    wait_until(lambda: len(items(kubectl, "pods", "-l", "app=ha")) == 3, what="3 pods")
    time.sleep(2)  # both replicas had time to act: still 3 pods, one ReplicaSet
    assert len(items(kubectl, "pods", "-l", "app=ha")) == 3
    assert len(items(kubectl, "rs", "-l", "app=ha")) == 1
    leader, standby = (a, b) if first == "replica-a" else (b, a)
    assert "became leader" in leader.text() and "became leader" not in standby.text()

    leader.stop(signal.SIGKILL)  # no release: the other must wait the lease out
    t0 = time.monotonic()
    wait_until(lambda: holder(kubectl) not in (None, first), timeout=30, what="a new leader")
    took = time.monotonic() - t0
    print(f"takeover after SIGKILL of the leader: {took:.1f}s (lease duration 6s)")  # a figure, not a test
    lease = get_json(kubectl, "get", "lease", "kube-controller-manager", "-n", "kube-system")
    assert lease["spec"]["leaseTransitions"] >= 1
    kubectl("scale", "deployment", "ha", "--replicas=5")
    wait_until(lambda: len(items(kubectl, "pods", "-l", "app=ha")) == 5, what="5 pods from the new leader")
    time.sleep(2)
    assert len(items(kubectl, "pods", "-l", "app=ha")) == 5
    assert len(items(kubectl, "rs", "-l", "app=ha")) == 1
    created = [e for e in items(kubectl, "events") if e["reason"] == "SuccessfulCreate"
               and e["involvedObject"]["kind"] == "ReplicaSet"]
    assert len(created) == 5  # every pod created exactly once, across both terms
