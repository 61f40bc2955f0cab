"""Node lifecycle against a real API server: fake nodes whose Leases the test renews; a node whose
Lease stops becomes Ready=Unknown with the unreachable taints, its pods are evicted after their
tolerationSeconds; a node that comes back is untainted; a cluster where every node is down is not
evicted. The 40 s grace period is shortened through the controller's flag."""

import json

import pytest

from tests.unit.controlplane.controllers.conftest import get_json, wait_until
from tests.unit.controlplane.controllers.fakes import FakeNodes

GRACE = 3


@pytest.fixture(scope="module", autouse=True)
def controllers(start_controllers):
    return start_controllers("--controllers=nodelifecycle,replicaset", f"--node-monitor-grace-period={GRACE}",
                             "--node-monitor-period=0.5", "--node-eviction-rate=10")


@pytest.fixture(scope="module")
def nodes(server):
    with FakeNodes(server.kubeconfig) as n:
        for name in ("n1", "n2", "n3"):
            n.add(name, {"topology.kubernetes.io/zone": "z1"})
        yield n


def pod(name, node, toleration_seconds=None):
    spec = {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}
    if toleration_seconds is not None:
        spec["tolerations"] = [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                "effect": "NoExecute", "tolerationSeconds": toleration_seconds}]
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})


RS = json.dumps({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "movers"}, "spec": {
    "replicas": 1, "selector": {"matchLabels": {"app": "movers"}}, "template": {
        "metadata": {"labels": {"app": "movers"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], "tolerations": [
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 2}]}}}})


def bind(server, name, node):
    """Place a pod as the scheduler would (pods/binding)."""
    import asyncio

    from apiclient import PODS, ApiClient, load_kubeconfig

    async def main():
        async with ApiClient(load_kubeconfig(server.kubeconfig)) as api:
            await api.create(PODS, {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                                    "target": {"apiVersion": "v1", "kind": "Node", "name": node}},
                             "default", subresource="binding", name=name)
    asyncio.run(main())


def ready_of(kubectl, node):
    n = get_json(kubectl, "get", "node", node)
    return next(c for c in n["status"]["conditions"] if c["type"] == "Ready")


def taints_of(kubectl, node):
    return {(t["key"], t["effect"]) for t in (get_json(kubectl, "get", "node", node).get("spec") or {}).get("taints") or []}


def test_lease_stops_unknown_taints_eviction_and_recovery(kubectl, nodes, server):
    for name, secs in (("quick", 2), ("patient", None)):
        kubectl("apply", "-f", "-", input=pod(name, "n2", secs))
    kubectl("apply", "-f", "-", input=RS)
    mover = wait_until(lambda: get_json(kubectl, "get", "pods", "-l", "app=movers")["items"], what="the RS pod")[0]
    bind(server, mover["metadata"]["name"], "n2")
    kubectl("patch", "pod", "quick", "--subresource=status", "--type=merge", "-p", json.dumps(
        {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}))
    import time
    time.sleep(GRACE + 1)  # a full grace period with renewals: nothing happens to a live node
    assert ready_of(kubectl, "n2")["status"] == "True" and not taints_of(kubectl, "n2")

    nodes.stop("n2")
    cond = wait_until(lambda: (c := ready_of(kubectl, "n2"))["status"] == "Unknown" and c,
                      timeout=GRACE + 10, what="Ready=Unknown")
    assert cond["reason"] == "NodeStatusUnknown" and cond["message"] == "Kubelet stopped posting node status."
    wait_until(lambda: taints_of(kubectl, "n2") == {("node.kubernetes.io/unreachable", "NoSchedule"),
                                                    ("node.kubernetes.io/unreachable", "NoExecute")},
               what="unreachable taints")
    noexec = [t for t in get_json(kubectl, "get", "node", "n2")["spec"]["taints"] if t["effect"] == "NoExecute"][0]
    assert noexec["timeAdded"]
    assert ready_of(kubectl, "n1")["status"] == "True" and not taints_of(kubectl, "n1")
    p = get_json(kubectl, "get", "pod", "quick")
    assert any(c["type"] == "Ready" and c["status"] == "False" for c in p["status"]["conditions"])
    wait_until(lambda: get_json(kubectl, "get", "pod", "quick")["metadata"].get("deletionTimestamp"),
               timeout=15, what="the pod with tolerationSeconds=2 evicted")
    # the ReplicaSet's pod on n2 is evicted too, and replaced (a scheduler would place it elsewhere)
    wait_until(lambda: [p for p in get_json(kubectl, "get", "pods", "-l", "app=movers")["items"]
                        if not p["metadata"].get("deletionTimestamp")
                        and p["metadata"]["name"] != mover["metadata"]["name"]], what="a replacement pod")
    patient = get_json(kubectl, "get", "pod", "patient")  # the default 300 s toleration keeps it
    assert not patient["metadata"].get("deletionTimestamp")
    assert {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": 300} in patient["spec"]["tolerations"]

    nodes.start("n2")
    wait_until(lambda: not taints_of(kubectl, "n2"), what="taints removed once Ready again")
    assert ready_of(kubectl, "n2")["status"] == "True"


def test_all_nodes_down_is_not_evicted(kubectl, nodes):
    for n in ("n1", "n2", "n3"):
        nodes.stop(n)
    for n in ("n1", "n2", "n3"):
        wait_until(lambda: ready_of(kubectl, n)["status"] == "Unknown", timeout=GRACE + 10, what=f"{n} Unknown")
    wait_until(lambda: all(("node.kubernetes.io/unreachable", "NoSchedule") in taints_of(kubectl, n)
                           for n in ("n1", "n2", "n3")), what="NoSchedule taints")
    import time
    time.sleep(2)  # several monitor periods: the full-disruption rule must hold throughout
    for n in ("n1", "n2", "n3"):
        assert ("node.kubernetes.io/unreachable", "NoExecute") not in taints_of(kubectl, n), n
    for n in ("n1", "n2", "n3"):
        nodes.start(n)


def test_registered_node_event_shown_by_describe(kubectl, nodes):
    """node-controller's RegisteredNode: about the Node with no namespace in involvedObject (in
    namespace default), which is what `kubectl describe node` searches for."""
    def registered():
        return [e for e in json.loads(kubectl("get", "events", "-A", "-o", "json"))["items"]
                if e["reason"] == "RegisteredNode" and e["involvedObject"]["name"] == "n2"]
    ev = wait_until(registered, what="a RegisteredNode event for n2")[0]
    assert ev["metadata"]["namespace"] == "default"
    assert "namespace" not in ev["involvedObject"] and ev["involvedObject"]["kind"] == "Node"
    assert ev["source"]["component"] == "node-controller"
    assert ev["message"] == "Node n2 event: Registered Node n2 in Controller"
    out = kubectl("describe", "node", "n2")
    assert "RegisteredNode" in out and "node-controller" in out
