"""The scheduler's loop with a fake API: informer events in, bindings and status patches out.
Checks the bookkeeping around a binding: assumed at once, forgotten and retried when the binding
fails, dropped when the pod was bound elsewhere meanwhile."""

import asyncio

from apiclient import Conflict, ServerError
from controlplane.scheduler.scheduler import Scheduler
from tests.unit.controlplane.scheduler.objects import node, pod


class FakeApi:
    def __init__(self):
        self.bindings, self.patches, self.fail = [], [], []

    async def create(self, res, obj, namespace=None, subresource=None, name=None, **kw):
        if subresource == "binding":
            if self.fail:
                raise self.fail.pop(0)
            self.bindings.append((name, obj["target"]["name"]))
        return obj

    async def patch(self, res, name, body, namespace=None, **kw):
        self.patches.append((name, body))
        return {}


def run(coro):
    return asyncio.run(coro)


def test_bind_failure_forgets_and_retries_then_binds():
    async def main():
        api = FakeApi()
        s = Scheduler(api)
        s._on_node("ADDED", node("a", cpu="1"), None)
        p = pod("p", cpu="1")
        s.pods.cache[("default", "p")] = p  # what the informer shows
        s._on_pod("ADDED", p, None)
        api.fail.append(ServerError(500, "InternalError", "boom"))
        qp = s.queue.pop_nowait()
        s.schedule_one(qp)
        assert s.cache.nodes["a"].req_cpu == 1000  # assumed before the binding returns
        await asyncio.gather(*s._tasks)
        assert s.cache.nodes["a"].req_cpu == 0 and api.bindings == []  # forgotten
        assert s.queue.pods[p["metadata"]["uid"]].where == "backoff"
        s.queue.clock = lambda: 1e12  # backoff over
        s.schedule_one(s.queue.pop_nowait())
        await asyncio.gather(*s._tasks)
        assert api.bindings == [("p", "a")]
        # the informer's echo of the binding confirms the assumption
        bound = {**p, "spec": {**p["spec"], "nodeName": "a"}}
        s._on_pod("MODIFIED", bound, p)
        assert not s.cache.is_assumed(p["metadata"]["uid"]) and s.cache.nodes["a"].req_cpu == 1000
    run(main())


def test_conflict_means_bound_elsewhere_no_retry():
    async def main():
        api = FakeApi()
        s = Scheduler(api)
        s._on_node("ADDED", node("a"), None)
        p = pod("p", cpu="1")
        s._on_pod("ADDED", p, None)
        api.fail.append(Conflict(409, "Conflict", "pod p is already assigned to node \"b\""))
        s.schedule_one(s.queue.pop_nowait())
        await asyncio.gather(*s._tasks)
        assert s.cache.nodes["a"].req_cpu == 0 and p["metadata"]["uid"] not in s.queue
    run(main())


def test_unschedulable_patch_and_wakeup_by_node_add():
    async def main():
        api = FakeApi()
        s = Scheduler(api)
        s._on_node("ADDED", node("small", cpu="1"), None)
        p = pod("p", cpu="2")
        s._on_pod("ADDED", p, None)
        s.schedule_one(s.queue.pop_nowait())
        await asyncio.gather(*s._tasks)
        name, body = api.patches[-1]
        cond = body["status"]["conditions"][0]
        assert name == "p" and (cond["type"], cond["status"], cond["reason"]) == ("PodScheduled", "False", "Unschedulable")
        assert cond["message"].startswith("0/1 nodes are available: 1 Insufficient cpu.")
        qp = s.queue.pods[p["metadata"]["uid"]]
        assert qp.where == "unschedulable"
        s._on_node("MODIFIED", node("small", cpu="1"), node("small", cpu="1"))  # a heartbeat: nothing
        assert qp.where == "unschedulable"
        s._on_node("ADDED", node("big", cpu="4"), None)
        assert qp.where in ("active", "backoff")
    run(main())


def test_update_during_binding_does_not_schedule_twice():
    async def main():
        api = FakeApi()
        s = Scheduler(api)
        s._on_node("ADDED", node("a", cpu="2"), None)
        p = pod("p", cpu="1")
        s._on_pod("ADDED", p, None)
        s.schedule_one(s.queue.pop_nowait())  # assumed; the binding task has not run yet
        relabelled = {**p, "metadata": {**p["metadata"], "labels": {"x": "y"}}}
        s._on_pod("MODIFIED", relabelled, p)
        assert s.queue.pop_nowait() is None
        await asyncio.gather(*s._tasks)
        assert api.bindings == [("p", "a")] and s.cache.nodes["a"].req_cpu == 1000
    run(main())
