"""Two replicas of the whole control plane besides the API server — two schedulers and two
controller managers, with upstream's default leader-election timings (lease 15 s, renew 10 s,
retry 2 s) — against one API server, driven by the real kubectl. One of each leads; SIGKILL both
leaders (no clean release: the others must wait the Lease out) and the standbys take over within
20 s; across both terms every pod is created once and bound once."""

import json
import signal
import time

from tests.unit.controlplane.controllers.conftest import items, wait_until
from tests.unit.controlplane.scheduler.conftest import start_scheduler, stop

NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "ha-node"},
        "status": {"allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"},
                   "capacity": {"cpu": "8", "memory": "16Gi", "pods": "110"},
                   "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}


def holder(kubectl, lease):
    p = kubectl.run("get", "lease", lease, "-n", "kube-system", "-o", "json", check=False)
    return json.loads(p.stdout)["spec"].get("holderIdentity") if p.returncode == 0 else None


def bound_pods(kubectl, n):
    pods = items(kubectl, "pods", "-l", "app=ha")
    return pods if len(pods) == n and all(p["spec"].get("nodeName") == "ha-node" for p in pods) else None


def test_leaders_killed_standbys_take_over_within_20s(kubectl, server, start_controllers, tmp_path):
    kubectl("create", "-f", "-", input=json.dumps(NODE))
    scheds = {}
    try:
        for name in ("sched-a", "sched-b"):
            scheds[name] = start_scheduler(server, tmp_path / f"{name}.log", "--identity", name)
        ctrls = {name: start_controllers("--controllers=replicaset,deployment", f"--identity={name}")
                 for name in ("kcm-a", "kcm-b")}
        sched_leader = wait_until(lambda: holder(kubectl, "kube-scheduler"), what="a scheduler leader")
        kcm_leader = wait_until(lambda: holder(kubectl, "kube-controller-manager"), what="a controllers leader")

        kubectl("create", "deployment", "ha", "--image=busybox", "--replicas=3")
        wait_until(lambda: bound_pods(kubectl, 3), what="3 pods created and bound")

        scheds[sched_leader].send_signal(signal.SIGKILL)
        ctrls[kcm_leader].stop(signal.SIGKILL)
        t0 = time.monotonic()
        new_sched = wait_until(lambda: holder(kubectl, "kube-scheduler") not in (None, sched_leader)
                               and holder(kubectl, "kube-scheduler"), timeout=20, interval=0.5,
                               what="the standby scheduler to take over")
        new_kcm = wait_until(lambda: holder(kubectl, "kube-controller-manager") not in (None, kcm_leader)
                             and holder(kubectl, "kube-controller-manager"),
                             timeout=max(0.5, 20 - (time.monotonic() - t0)), interval=0.5,
                             what="the standby controller manager to take over")
        print(f"takeover after SIGKILL: {time.monotonic() - t0:.1f}s")  # a figure, not a test
        assert {new_sched, new_kcm} == {({"sched-a", "sched-b"} - {sched_leader}).pop(),
                                         ({"kcm-a", "kcm-b"} - {kcm_leader}).pop()}

        kubectl("scale", "deployment", "ha", "--replicas=6")
        pods = wait_until(lambda: bound_pods(kubectl, 6), what="6 pods from the new leaders")
        time.sleep(2)  # both new leaders had time to act twice, if they were going to
        assert len(items(kubectl, "pods", "-l", "app=ha")) == 6
        assert len(items(kubectl, "rs", "-l", "app=ha")) == 1
        events = items(kubectl, "events")
        created = [e for e in events if e["reason"] == "SuccessfulCreate" and e["involvedObject"]["kind"] == "ReplicaSet"]
        assert len(created) == 6  # every pod created exactly once, across both terms
        scheduled = sorted(e["involvedObject"]["name"] for e in events if e["reason"] == "Scheduled")
        assert scheduled == sorted(p["metadata"]["name"] for p in pods)  # and bound exactly once
        for name in scheds:  # no replica ever lost a binding race (409: already assigned)
            assert "already assigned" not in (tmp_path / f"{name}.log").read_text()
    finally:
        for p in scheds.values():
            stop(p)
