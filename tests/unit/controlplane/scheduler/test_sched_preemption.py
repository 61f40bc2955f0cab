"""Preemption on plain dicts: which node, which victims, and the message when it cannot help."""

import pytest

from controlplane.scheduler.algorithm import FitError
from controlplane.scheduler.podinfo import pod_info
from controlplane.scheduler.preemption import preempt
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
