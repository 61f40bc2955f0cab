"""The cache's bookkeeping: assumed pods count at once, a binding confirms or forgets them,
terminal pods free their room, pods of a vanished node are kept until they go."""

from controlplane.scheduler.cache import Cache
from controlplane.scheduler.podinfo import pod_info
from tests.unit.controlplane.scheduler.objects import node, pod


def test_assume_confirm_forget():
    c = Cache()
    c.set_node(node("a"))
    c.set_node(node("b"))
    p = pod_info(pod("p", cpu="1"))
    c.assume(p, "a")
    assert c.nodes["a"].req_cpu == 1000 and c.is_assumed(p.uid)
    # the server says it went to b after all (another writer): counted there, not twice
    bound = pod_info({**p.raw, "spec": {**p.raw["spec"], "nodeName": "b"}})
    c.set_pod(bound)
    assert (c.nodes["a"].req_cpu, c.nodes["b"].req_cpu) == (0, 1000) and not c.is_assumed(p.uid)
    q = pod_info(pod("q", cpu="2"))
    c.assume(q, "a")
    c.forget(q)  # binding failed
    assert c.nodes["a"].req_cpu == 0 and len(c.nodes["a"].pods) == 0
    c.forget(bound)  # forgetting a confirmed pod does nothing
    assert c.nodes["b"].req_cpu == 1000


def test_terminal_pods_free_their_room_and_ports():
    c = Cache()
    c.set_node(node("a"))
    raw = pod("p", cpu="1", node_name="a", ports=[{"containerPort": 80, "hostPort": 80}])
    c.set_pod(pod_info(raw))
    assert c.nodes["a"].port_conflict("0.0.0.0", "TCP", 80)
    raw["status"]["phase"] = "Succeeded"
    c.set_pod(pod_info(raw))
    assert c.nodes["a"].req_cpu == 0 and not c.nodes["a"].port_conflict("0.0.0.0", "TCP", 80)


def test_node_gone_before_its_pods():
    c = Cache()
    c.set_node(node("a", taints=[{"key": "k", "effect": "NoSchedule"}]))
    p = pod_info(pod("p", cpu="1", node_name="a"))
    c.set_pod(p)
    assert c.hints()["taints"]
    c.remove_node("a")
    assert c.node_list() == [] and c.nodes["a"].req_cpu == 1000 and not c.hints()["taints"]
    c.remove_pod(p.uid)
    assert "a" not in c.nodes


def test_affinity_hints_follow_the_pods():
    c = Cache()
    c.set_node(node("a"))
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "x"}}, "topologyKey": "kubernetes.io/hostname"}]}}
    p = pod_info(pod("p", node_name="a", affinity=anti))
    c.set_pod(p)
    assert c.hints()["anti_affinity_pods"] and c.hints()["affinity_pods"]
    c.remove_pod(p.uid)
    assert not c.hints()["anti_affinity_pods"] and not c.hints()["affinity_pods"]
