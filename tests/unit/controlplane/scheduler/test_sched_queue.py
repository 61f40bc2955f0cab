"""The scheduling queue with a fake clock: order, backoff, unschedulable and the events that wake it."""

import asyncio

from controlplane.scheduler.framework.plugin import NODE_ADD, POD_CHANGE, POD_GONE
from controlplane.scheduler.podinfo import pod_info
from controlplane.scheduler.queue import ACTIVE, BACKOFF, GATED, UNSCHEDULABLE, SchedulingQueue
from tests.unit.controlplane.scheduler.objects import pod


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


EVENTS = {"NodeResourcesFit": frozenset({NODE_ADD, POD_GONE}), "TaintToleration": frozenset({NODE_ADD}),
          "InterPodAffinity": frozenset({NODE_ADD, POD_GONE, POD_CHANGE})}


def make():
    clock = Clock()
    return SchedulingQueue(EVENTS, clock=clock), clock


def test_priority_then_fifo():
    q, clock = make()
    for name, prio in (("low", 0), ("high", 100), ("low2", 0), ("mid", 50)):
        clock.t += 1
        q.add(pod_info(pod(name, priority=prio)))
    assert [q.pop_nowait().pod.name for _ in range(4)] == ["high", "mid", "low", "low2"]
    assert q.pop_nowait() is None


def test_unschedulable_waits_for_a_matching_event_then_backoff():
    q, clock = make()
    q.add(pod_info(pod("p")))
    qp = q.pop_nowait()
    q.failed(qp, frozenset({"TaintToleration"}))
    assert qp.where == UNSCHEDULABLE
    assert q.move(POD_GONE) == 0  # a freed pod cannot remove a taint
    assert q.pop_nowait() is None
    assert q.move(NODE_ADD) == 1
    assert qp.where == BACKOFF  # its 1 s backoff has not run out yet
    assert q.pop_nowait() is None
    clock.t += 1.01
    assert q.pop_nowait() is qp and qp.attempts == 2
    # second failure: 2 s backoff
    q.failed(qp, frozenset({"NodeResourcesFit"}))
    clock.t += 5
    assert q.move(POD_GONE) == 1 and qp.where == ACTIVE


def test_backoff_doubles_up_to_the_cap():
    q, clock = make()
    q.add(pod_info(pod("p")))
    waits = []
    for _ in range(6):
        qp = q.pop_nowait()
        q.failed(qp, frozenset())  # no plugin to wait for (e.g. an API error): straight to backoff
        waits.append(q.backoff_until(qp) - clock.t)
        clock.t += waits[-1]
    assert waits == [1, 2, 4, 8, 10, 10]


def test_event_during_the_attempt_is_not_lost():
    q, clock = make()
    q.add(pod_info(pod("p")))
    qp = q.pop_nowait()
    q.move(NODE_ADD)  # a node arrives while p is being tried
    q.failed(qp, frozenset({"TaintToleration"}))
    assert qp.where == BACKOFF


def test_gated_pods_wait_for_the_gates_to_go():
    q, clock = make()
    gated = pod("g", schedulingGates=[{"name": "example.com/wait"}])
    q.add(pod_info(gated))
    assert q.pods[gated["metadata"]["uid"]].where == GATED and q.pop_nowait() is None
    gated["spec"] = {k: v for k, v in gated["spec"].items() if k != "schedulingGates"}
    q.update(pod_info(gated))
    assert q.pop_nowait().pod.name == "g"


def test_deleted_pod_is_skipped_and_pop_awaits():
    async def main():
        q, clock = make()
        a, b = pod_info(pod("a")), pod_info(pod("b"))
        q.add(a)
        q.add(b)
        q.delete(a.uid)
        assert (await q.pop()).pod.name == "b"
        waiter = asyncio.ensure_future(q.pop())
        await asyncio.sleep(0.01)
        assert not waiter.done()
        q.add(pod_info(pod("c")))
        assert (await asyncio.wait_for(waiter, 2)).pod.name == "c"
    asyncio.run(main())
