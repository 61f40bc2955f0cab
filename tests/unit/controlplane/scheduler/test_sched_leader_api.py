"""Two scheduler replicas against one API server: one holds the Lease kube-system/kube-scheduler
and schedules, the other waits; when the leader stops, the other takes over and schedules."""

import json

from tests.unit.controlplane.scheduler.conftest import start_scheduler, stop

LEASE = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler"
POD = {"apiVersion": "v1", "kind": "Pod",
       "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def pod(name):
    p = json.loads(json.dumps(POD))
    p["metadata"] = {"name": name}
    return p


def holder(api):
    return ((api.call("GET", LEASE) or {}).get("spec") or {}).get("holderIdentity")


def test_one_leader_then_takeover(api, tmp_path):
    api.reset()
    first = start_scheduler(api.server, tmp_path / "first.log", "--identity", "first")
    second = None
    try:
        api.wait(lambda: holder(api) == "first", 30, "the first replica to lead")
        second = start_scheduler(api.server, tmp_path / "second.log", "--identity", "second")
        api.node("a")
        for i in range(5):
            api.create_pod(pod(f"before{i}"))
        for i in range(5):
            assert api.bound(f"before{i}") == "a"
        assert holder(api) == "first"
        # exactly one binding per pod: a second scheduler binding too would have hit 409s
        assert "already assigned" not in (tmp_path / "second.log").read_text()
        stop(first)  # a clean stop releases the Lease, so the standby need not wait 15 s
        api.wait(lambda: holder(api) == "second", 20, "the second replica to take over")
        api.create_pod(pod("after"))
        assert api.bound("after") == "a"
        assert "became leader" in (tmp_path / "second.log").read_text()
    finally:
        stop(first)
        if second is not None:
            stop(second)
