"""Preemption on plain dicts: which node, which victims, and the message when it cannot help."""

import pytest

from controlplane.scheduler.algorithm import FitError
from controlplane.scheduler.podinfo import pod_info
from controlplane.scheduler.preemption import budget, preempt, split_by_budget
from tests.unit.controlplane.scheduler.objects import Sched, node, pod


def attempt(s: Sched, p: dict):
    pi = pod_info(p)
    with pytest.raises(FitError) as e:
        s.algorithm.schedule(pi)
    cand, msg = preempt(s.framework, s.cache, pi, e.value.statuses)
    return cand, e.value.message("preemption: " + msg if msg else "")


def test_fewest_and_least_important_victims():
    s = Sched([node("a", cpu="2"), node("b", cpu="2")],
              [pod("a-low1", cpu="1", priority=1, node_name="a"), pod("a-low2", cpu="1", priority=1, node_name="a"),
               pod("b-mid", cpu="1", priority=50, node_name="b"), pod("b-low", cpu="1", priority=1, node_name="b")])
    cand, _ = attempt(s, pod("vip", cpu="1", priority=100))
    # both nodes need one victim; b's would be priority 1 (b-low), a's too; a tie on top priority
    # and sum → either node is fine, but exactly one victim of priority 1
    assert len(cand.victims) == 1 and cand.victims[0].priority == 1
    cand, _ = attempt(s, pod("vip2", cpu="2", priority=100))
    assert cand.node == "a" and {v.name for v in cand.victims} == {"a-low1", "a-low2"}


def test_reprieve_keeps_what_can_stay():
    s = Sched([node("a", cpu="3")],
              [pod("keep", cpu="1", priority=10, node_name="a"), pod("go", cpu="2", priority=5, node_name="a")])
    cand, _ = attempt(s, pod("vip", cpu="2", priority=100))
    assert [v.name for v in cand.victims] == ["go"]


def test_no_victims_and_not_helpful_messages():
    s = Sched([node("a", cpu="1"), node("b", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}])],
              [pod("same", cpu="1", priority=100, node_name="a")])
    cand, msg = attempt(s, pod("p", cpu="1", priority=100))
    assert cand is None
    assert msg == ("0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {k: v}. "
                   "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, "
                   "1 Preemption is not helpful for scheduling..")


def test_preemption_policy_never():
    s = Sched([node("a", cpu="1")], [pod("low", cpu="1", node_name="a")])
    cand, msg = attempt(s, pod("p", cpu="1", priority=100, preemptionPolicy="Never"))
    assert cand is None and msg.endswith("preemption: not eligible due to preemptionPolicy=Never..")


def test_nominated_room_is_kept_for_the_preemptor():
    s = Sched([node("a", cpu="1")])
    vip = pod_info(pod("vip", cpu="1", priority=100))
    s.nominator.add(vip, "a")
    with pytest.raises(FitError):
        s.place(pod("sneaky", cpu="500m", priority=0))
    assert s.place(pod("peer", cpu="500m", priority=200)) == "a"  # higher priority may still go


def pdb(name, labels, allowed, ns="default", disrupted=()):
    return budget({"metadata": {"name": name, "namespace": ns},
                   "spec": {"selector": {"matchLabels": labels}} if labels is not None else {},
                   "status": {"disruptionsAllowed": allowed, "disruptedPods": {d: "2026-01-01T00:00:00Z" for d in disrupted}}})


def test_budgets_spent_pod_by_pod():
    ps = [pod_info(pod(n, labels={"app": "g"}, node_name="a")) for n in ("p1", "p2", "p3")]
    violating, fine = split_by_budget(ps, [pdb("g", {"app": "g"}, 1, disrupted=["p2"])])
    assert [p.name for p in fine] == ["p1", "p2"] and [p.name for p in violating] == ["p3"]
    # an empty selector, another namespace: no budget applies
    assert split_by_budget(ps, [pdb("e", None, 0), pdb("o", {"app": "g"}, 0, ns="other")]) == ([], ps)


def test_node_whose_victims_break_no_budget_is_preferred():
    guarded = {"app": "guarded"}
    s = Sched([node("a", cpu="1"), node("b", cpu="1")],
              [pod("a-guarded", cpu="1", priority=1, labels=guarded, node_name="a"),
               pod("b-free", cpu="1", priority=50, labels={"app": "free"}, node_name="b")])
    pi = pod_info(pod("vip", cpu="1", priority=100))
    with pytest.raises(FitError) as e:
        s.algorithm.schedule(pi)
    cand, _ = preempt(s.framework, s.cache, pi, e.value.statuses)
    assert cand.node == "a"  # no budget: the lower-priority victim
    cand, _ = preempt(s.framework, s.cache, pi, e.value.statuses, [pdb("g", guarded, 0)])
    assert cand.node == "b" and [v.name for v in cand.victims] == ["b-free"] and cand.pdb_violations == 0
    # every candidate breaks a budget: preempt anyway (best effort), then by priority as before
    cand, _ = preempt(s.framework, s.cache, pi, e.value.statuses, [pdb("g", guarded, 0), pdb("f", {"app": "free"}, 0)])
    assert cand.node == "a" and cand.pdb_violations == 1
    # an empty selector selects nothing
    cand, _ = preempt(s.framework, s.cache, pi, e.value.statuses, [pdb("g", guarded, 0), pdb("all", {}, 0)])
    assert cand.node == "b"


def test_guarded_pods_are_given_back_first():
    s = Sched([node("a", cpu="2")],
              [pod("guarded", cpu="1", priority=1, labels={"app": "g"}, node_name="a"),
               pod("free", cpu="1", priority=2, node_name="a")])
    pi = pod_info(pod("vip", cpu="1", priority=100))
    with pytest.raises(FitError) as e:
        s.algorithm.schedule(pi)
    cand, _ = preempt(s.framework, s.cache, pi, e.value.statuses)
    assert [v.name for v in cand.victims] == ["guarded"]  # the less important one goes
    cand, _ = preempt(s.framework, s.cache, pi, e.value.statuses, [pdb("g", {"app": "g"}, 0)])
    assert [v.name for v in cand.victims] == ["free"] and cand.pdb_violations == 0
