"""`nodeagent server` as a whole control plane (API server, scheduler, every controller, upstream's
default timings: --node-monitor-grace-period 40 s, --node-monitor-period 5 s) with three fake
nodes whose Leases the test renews, driven by the real kubectl. A Deployment's pod lands on a
node; that node's Lease stops: within 45 s the node is Ready=Unknown with the unreachable taints,
and once the pod's tolerationSeconds run out it is evicted and its replacement is bound to
another node."""

import json
import time

import pytest

from tests.apiserver import Kubectl, start_server
from tests.unit.controlplane.controllers.conftest import get_json, wait_until
from tests.unit.controlplane.controllers.fakes import FakeNodes

UNREACHABLE = {("node.kubernetes.io/unreachable", "NoSchedule"), ("node.kubernetes.io/unreachable", "NoExecute")}


@pytest.fixture(scope="module")
def plane(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("plane") / "data", None, bare=False)
    yield srv
    srv.stop()


def live_pods(kubectl):
    return [p for p in get_json(kubectl, "get", "pods", "-l", "app=movers")["items"]
            if not p["metadata"].get("deletionTimestamp")]


def node_state(kubectl, name):
    n = get_json(kubectl, "get", "node", name)
    ready = next(c for c in n["status"]["conditions"] if c["type"] == "Ready")
    return ready, {(t["key"], t["effect"]) for t in (n.get("spec") or {}).get("taints") or []}


def test_node_lease_stops_unknown_within_45s_pod_replaced_elsewhere(plane, tmp_path):
    kubectl = Kubectl(plane, tmp_path / "cache")
    with FakeNodes(plane.kubeconfig) as nodes:
        for name in ("n1", "n2", "n3"):
            nodes.add(name, {"topology.kubernetes.io/zone": "z1"})
        kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "movers"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "movers"}}, "template": {
                "metadata": {"labels": {"app": "movers"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}], "tolerations": [{
                    "key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                    "tolerationSeconds": 5}]}}}}))
        first = wait_until(lambda: [p for p in live_pods(kubectl) if p["spec"].get("nodeName")],
                           what="the pod bound")[0]
        doomed = first["spec"]["nodeName"]

        nodes.stop(doomed)
        t0 = time.monotonic()
        ready, taints = wait_until(lambda: (s := node_state(kubectl, doomed))[0]["status"] == "Unknown"
                                   and s[1] >= UNREACHABLE and s, timeout=45, interval=0.5,
                                   what="Ready=Unknown and the unreachable taints")
        print(f"node {doomed} Unknown and tainted {time.monotonic() - t0:.1f}s after its Lease stopped")
        assert ready["reason"] == "NodeStatusUnknown" and ready["message"] == "Kubelet stopped posting node status."
        for other in {"n1", "n2", "n3"} - {doomed}:
            assert node_state(kubectl, other)[0]["status"] == "True"

        replacement = wait_until(lambda: [p for p in live_pods(kubectl) if p["metadata"]["uid"] != first["metadata"]["uid"]
                                          and p["spec"].get("nodeName")], timeout=60,
                                 what="the evicted pod's replacement bound")[0]
        assert replacement["spec"]["nodeName"] in {"n1", "n2", "n3"} - {doomed}
        gone = get_json(kubectl, "get", "pods", "-l", "app=movers")["items"]
        old = [p for p in gone if p["metadata"]["uid"] == first["metadata"]["uid"]]
        assert not old or old[0]["metadata"].get("deletionTimestamp")  # evicted, not merely ignored
        kinds = {e["reason"] for e in get_json(kubectl, "get", "events")["items"]}
        assert {"NodeNotReady", "TaintManagerEviction"} <= kinds
