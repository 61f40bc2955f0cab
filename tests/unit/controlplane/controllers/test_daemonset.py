"""DaemonSets on fake nodes: a pod per eligible node (pinned through node affinity, bound by a
stand-in scheduler), a new node gets one, taints and selectors decide eligibility, cordoned nodes
keep theirs, a rolling update replaces one node at a time."""

import json

import pytest

from tests.unit.controlplane.controllers.conftest import get_json, items, wait_until
from tests.unit.controlplane.controllers.fakes import FakeKubelet, FakeNodes

DS = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: %(name)s}
spec:
  selector: {matchLabels: {app: %(name)s}}
  template:
    metadata: {labels: {app: %(name)s}}
    spec:
      %(extra)s
      containers: [{name: c, image: "busybox:1"}]
"""


@pytest.fixture(scope="module", autouse=True)
def controllers(start_controllers):
    return start_controllers("--controllers=daemonset")


@pytest.fixture(scope="module")
def cluster(server):
    with FakeNodes(server.kubeconfig) as nodes, FakeKubelet(server.kubeconfig, bind_pinned=True) as kubelet:
        for n in ("n1", "n2", "n3"):
            nodes.add(n, {"disk": "ssd" if n != "n3" else "hdd"})
        yield nodes, kubelet


def by_node(kubectl, app):
    out = {}
    for p in items(kubectl, "pods", "-l", f"app={app}"):
        if not p["metadata"].get("deletionTimestamp") and p["spec"].get("nodeName"):  # bound ones
            out.setdefault(p["spec"]["nodeName"], []).append(p)
    return out


def test_one_pod_per_node_and_new_node(kubectl, cluster):
    nodes, _ = cluster
    kubectl("apply", "-f", "-", input=DS % {"name": "agent", "extra": ""})
    wait_until(lambda: sorted(by_node(kubectl, "agent")) == ["n1", "n2", "n3"], what="a pod on each node")
    pods = by_node(kubectl, "agent")
    assert all(len(v) == 1 for v in pods.values())
    p = pods["n1"][0]
    term = p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term == {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                                           "values": ["n1"]}]}]}
    assert {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"} in p["spec"]["tolerations"]
    st = wait_until(lambda: (s := get_json(kubectl, "get", "ds", "agent")["status"]).get("numberReady") == 3 and s,
                    what="3 ready")
    assert st["desiredNumberScheduled"] == 3 and st["currentNumberScheduled"] == 3 and st["numberAvailable"] == 3
    nodes.add("n4")
    wait_until(lambda: "n4" in by_node(kubectl, "agent"), what="a pod for the new node")
    kubectl("cordon", "n2")  # unschedulable is tolerated by daemons
    kubectl("taint", "node", "n3", "dedicated=x:NoExecute")  # not tolerated: its pod goes
    wait_until(lambda: sorted(by_node(kubectl, "agent")) == ["n1", "n2", "n4"], what="n3's pod removed")
    kubectl("taint", "node", "n3", "dedicated=x:NoExecute-")
    kubectl("uncordon", "n2")
    wait_until(lambda: sorted(by_node(kubectl, "agent")) == ["n1", "n2", "n3", "n4"], what="back on n3")


def test_node_selector(kubectl, cluster):
    kubectl("apply", "-f", "-", input=DS % {"name": "ssd", "extra": "nodeSelector: {disk: ssd}"})
    wait_until(lambda: sorted(by_node(kubectl, "ssd")) == ["n1", "n2"], what="pods on the ssd nodes only")
    kubectl("label", "node", "n3", "disk=ssd", "--overwrite")
    wait_until(lambda: sorted(by_node(kubectl, "ssd")) == ["n1", "n2", "n3"], what="n3 relabelled gets one")


def test_rolling_update_one_node_at_a_time(kubectl, cluster):
    _, kubelet = cluster
    wait_until(lambda: get_json(kubectl, "get", "ds", "agent")["status"].get("numberReady") == 4, what="4 ready")
    worst = {"available": 99, "events": 0}

    def observe(pods):
        ready_nodes = {p["spec"].get("nodeName") for p in pods.values()
                       if (p["metadata"].get("labels") or {}).get("app") == "agent"
                       and not p["metadata"].get("deletionTimestamp")
                       and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])}
        worst["available"] = min(worst["available"], len(ready_nodes))
        worst["events"] += 1
    with kubelet.lock:
        kubelet.observers.append(observe)
    try:
        kubectl("set", "image", "ds/agent", "c=busybox:2")
        kubectl("rollout", "status", "ds/agent", "--timeout=90s")
    finally:
        with kubelet.lock:
            kubelet.observers.remove(observe)
    pods = by_node(kubectl, "agent")
    assert sorted(pods) == ["n1", "n2", "n3", "n4"]
    assert all(v[0]["spec"]["containers"][0]["image"] == "busybox:2" for v in pods.values())
    assert worst["events"] > 8 and worst["available"] == 3, worst  # maxUnavailable 1 of 4


def test_rollout_history_and_undo(kubectl, cluster):
    hist = kubectl("rollout", "history", "ds/agent")
    assert "1 " in hist and "2 " in hist
    kubectl("rollout", "undo", "ds/agent")
    kubectl("rollout", "status", "ds/agent", "--timeout=90s")
    pods = by_node(kubectl, "agent")
    assert sorted(pods) == ["n1", "n2", "n3", "n4"]
    assert all(v[0]["spec"]["containers"][0]["image"] == "busybox:1" for v in pods.values())
    revs = items(kubectl, "controllerrevisions", "-l", "app=agent")
    assert sorted(r["revision"] for r in revs) == [2, 3]  # the first template came back as revision 3


def test_surge_update_keeps_every_node_served(kubectl, cluster):
    _, kubelet = cluster
    kubectl("apply", "-f", "-", input=DS % {"name": "surge", "extra": ""})
    kubectl("patch", "ds", "surge", "--type=merge", "-p", json.dumps({"spec": {"updateStrategy": {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}}))
    kubectl("rollout", "status", "ds/surge", "--timeout=60s")
    seen = {"min_served": 99, "max_pods": 0}

    def observe(pods):
        mine = [p for p in pods.values() if (p["metadata"].get("labels") or {}).get("app") == "surge"
                and not p["metadata"].get("deletionTimestamp")]
        served = {p["spec"].get("nodeName") for p in mine
                  if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])}
        seen["min_served"] = min(seen["min_served"], len(served))
        seen["max_pods"] = max(seen["max_pods"], len(mine))
    with kubelet.lock:
        kubelet.observers.append(observe)
    try:
        kubectl("set", "image", "ds/surge", "c=busybox:2")
        kubectl("rollout", "status", "ds/surge", "--timeout=90s")
    finally:
        with kubelet.lock:
            kubelet.observers.remove(observe)
    pods = by_node(kubectl, "surge")
    assert len(pods) == 4 and all(len(v) == 1 and v[0]["spec"]["containers"][0]["image"] == "busybox:2"
                                  for v in pods.values())
    assert seen["min_served"] == 4, seen  # maxUnavailable 0: every node served throughout
    assert seen["max_pods"] == 5, seen  # maxSurge 1: one extra pod at a time
