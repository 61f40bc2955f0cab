"""Priority and preemption against a real API server: a high-priority pod evicts the fewest
lower-priority pods on one node, is nominated there and bound once they are gone."""

import json

POD = {"apiVersion": "v1", "kind": "Pod",
       "spec": {"containers": [{"name": "main", "image": "busybox",
                                "resources": {"requests": {"cpu": "1", "memory": "64Mi"}}}]}}


def with_priority(api, name, value):
    """A pod of the given priority: through a PriorityClass where the server serves them (the
    Priority admission sets spec.priority), else spec.priority directly, as that admission would."""
    pod = json.loads(json.dumps(POD))
    pod["metadata"] = {"name": name}
    served = api.call("GET", "/apis/scheduling.k8s.io/v1/priorityclasses") is not None if _has_scheduling(api) else False
    if served:
        cls = f"prio-{value}"
        if api.call("GET", f"/apis/scheduling.k8s.io/v1/priorityclasses/{cls}") is None:
            api.call("POST", "/apis/scheduling.k8s.io/v1/priorityclasses",
                     {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                      "metadata": {"name": cls}, "value": value})
        pod["spec"]["priorityClassName"] = cls
    else:
        pod["spec"]["priority"] = value
    return pod


def _has_scheduling(api):
    groups = api.call("GET", "/apis")["groups"]
    return any(g["name"] == "scheduling.k8s.io" for g in groups)


def test_high_priority_pod_preempts_one_victim(cluster, kubectl):
    cluster.node("busy", cpu="2")
    cluster.node("tainted", cpu="8", taints=[{"key": "k", "effect": "NoSchedule"}])
    for name, prio in (("low", 10), ("lower", 5)):
        cluster.create_pod(with_priority(cluster, name, prio))
        assert cluster.bound(name) == "busy"
    cluster.create_pod(with_priority(cluster, "vip", 1000))
    # nominated to the node, the least important pod is asked to go (gracefully: it is Terminating)
    cluster.wait(lambda: cluster.pod("vip")["status"].get("nominatedNodeName") == "busy", 30, "nomination")
    victim = cluster.wait(lambda: (cluster.pod("lower") or {}).get("metadata", {}).get("deletionTimestamp")
                          and cluster.pod("lower"), 30, "the victim's deletion")
    assert any(c["type"] == "DisruptionTarget" and c["reason"] == "PreemptionByScheduler"
               for c in victim["status"]["conditions"])
    assert not cluster.pod("low")["metadata"].get("deletionTimestamp")
    assert not cluster.pod("vip")["spec"].get("nodeName")  # not before the victim is gone
    # the test plays the kubelet: the victim's containers stopped, the pod object goes
    kubectl("delete", "pod", "lower", "--grace-period=0", "--force")
    assert cluster.bound("vip") == "busy"
    assert any(r == "Preempted" for _, r, _ in cluster.events("lower"))
    # a pod of the same priority as the lowest left cannot preempt anyone: it says so
    cluster.create_pod(with_priority(cluster, "peer", 10))
    msg = cluster.scheduled_condition("peer")["message"]
    assert msg == ("0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {k: }. "
                   "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, "
                   "1 Preemption is not helpful for scheduling.."), msg


def test_victim_whose_eviction_breaks_no_budget_is_preferred(cluster, kubectl):
    """Two full nodes; the least important pod is guarded by a PodDisruptionBudget (made with
    kubectl, none of its disruptions allowed): the preemptor takes the other node, whose victim
    is of higher priority but unguarded (upstream: fewest budget violations first)."""
    kubectl("create", "pdb", "guard", "--selector=app=guarded", "--min-available=1")
    cluster.node("a", cpu="1")
    cluster.node("b", cpu="1")
    guarded = with_priority(cluster, "guarded", 5)
    guarded["metadata"]["labels"] = {"app": "guarded"}
    guarded["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "a"}
    plain = with_priority(cluster, "plain", 10)
    plain["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "b"}
    for p in (guarded, plain):
        cluster.create_pod(p)
    assert cluster.bound("guarded") == "a" and cluster.bound("plain") == "b"
    try:
        cluster.create_pod(with_priority(cluster, "vip", 1000))
        cluster.wait(lambda: cluster.pod("vip")["status"].get("nominatedNodeName"), 30, "nomination")
        assert cluster.pod("vip")["status"]["nominatedNodeName"] == "b"
        cluster.wait(lambda: (cluster.pod("plain") or {}).get("metadata", {}).get("deletionTimestamp"), 30,
                     "the unguarded victim's deletion")
        assert not cluster.pod("guarded")["metadata"].get("deletionTimestamp")
        kubectl("delete", "pod", "plain", "--grace-period=0", "--force")
        assert cluster.bound("vip") == "b"
    finally:
        kubectl("delete", "pdb", "guard")
