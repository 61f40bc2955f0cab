"""The work queue and the controller base without a server: one key at a time per key, dedup,
per-key exponential backoff, and a controller whose sync fails for one object keeps serving
the others (logging the failure)."""

import asyncio
import logging

from controlplane.controllers.base import Controller, ControllerOptions
from controlplane.controllers.queue import WorkQueue


def test_dedup_and_no_concurrent_processing():
    async def main():
        q = WorkQueue()
        for k in ("a", "b", "a", "a"):
            q.add(k)
        assert len(q) == 2
        k = await q.get()
        assert k == "a"
        q.add("a")  # while processing: remembered, not handed out twice
        assert await q.get() == "b"
        assert len(q) == 0
        q.done("a")
        assert await q.get() == "a"  # back after done()
    asyncio.run(main())


def test_backoff_doubles_per_key_and_forget_resets():
    async def main():
        q = WorkQueue(base_delay=0.01, max_delay=0.05)
        assert [q.add_rate_limited("x") for _ in range(5)] == [0.01, 0.02, 0.04, 0.05, 0.05]
        assert q.add_rate_limited("y") == 0.01  # another key has its own count
        q.forget("x")
        assert q.add_rate_limited("x") == 0.01
    asyncio.run(main())


class Flaky(Controller):
    name = "flaky"

    def __init__(self):
        self.options = ControllerOptions(workers=2)
        self.queue = WorkQueue(base_delay=0.01)
        self.log = logging.getLogger("nodeagent.controllers.flaky")
        self.synced_keys = 0
        self.calls: list[str] = []

    async def sync(self, key):
        self.calls.append(key)
        if key == "bad":
            raise RuntimeError("this object always fails")


def test_one_failing_object_does_not_stop_the_others(caplog):
    async def main():
        c = Flaky()
        run = asyncio.ensure_future(c.run())
        c.queue.add("bad")
        for i in range(20):
            c.queue.add(f"good-{i}")
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        return c
    with caplog.at_level(logging.WARNING, logger="nodeagent.controllers.flaky"):
        c = asyncio.run(main())
    assert all(f"good-{i}" in c.calls for i in range(20))
    tries = c.calls.count("bad")
    assert 3 <= tries <= 8  # retried with a growing delay (0.01, 0.02, 0.04, ...), not in a hot loop
    assert c.queue.failures("bad") == tries
    assert "flaky bad: RuntimeError('this object always fails')" in caplog.text
