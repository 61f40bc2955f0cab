"""Leader election through a Lease against a real API server: one holder at a time, the record's
fields as client-go writes them, hand-over on release and after expiry."""

import asyncio
import re

from apiclient import LEASES, ApiClient, load_kubeconfig
from controlplane.leaderelection import LeaderElectionConfig, LeaderElector

MICRO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def cfg(name, ident):
    return LeaderElectionConfig("kube-system", name, ident, lease_duration=3, renew_deadline=2,
                                retry_period=0.5)


async def wait_for(pred, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_one_leader_release_hands_over(server):
    async def main():
        async with ApiClient(load_kubeconfig(server.kubeconfig)) as api:
            a, b = LeaderElector(api, cfg("le1", "a")), LeaderElector(api, cfg("le1", "b"))
            led = []

            async def lead_as(who):
                led.append(who)
                await asyncio.Event().wait()

            ta = asyncio.create_task(a.run(lambda: lead_as("a")))
            await wait_for(lambda: a.is_leader)
            tb = asyncio.create_task(b.run(lambda: lead_as("b")))
            await asyncio.sleep(4)  # longer than the lease: a keeps renewing, b must not take it
            assert (a.is_leader, b.is_leader) == (True, False) and led == ["a"]
            spec = (await api.get(LEASES, "le1", "kube-system"))["spec"]
            assert spec["holderIdentity"] == "a" and spec["leaseDurationSeconds"] == 3
            assert MICRO.match(spec["acquireTime"]) and MICRO.match(spec["renewTime"])
            assert spec["renewTime"] > spec["acquireTime"] and spec["leaseTransitions"] == 0

            ta.cancel()  # a clean stop releases the lease
            await asyncio.gather(ta, return_exceptions=True)
            assert not a.is_leader
            await wait_for(lambda: b.is_leader, timeout=3)
            spec = (await api.get(LEASES, "le1", "kube-system"))["spec"]
            assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
            assert led == ["a", "b"]
            tb.cancel()
            await asyncio.gather(tb, return_exceptions=True)
    asyncio.run(main())


def test_expired_lease_is_taken_over(server):
    async def main():
        async with ApiClient(load_kubeconfig(server.kubeconfig)) as api:
            a, b = LeaderElector(api, cfg("le2", "a")), LeaderElector(api, cfg("le2", "b"))
            assert await a.try_acquire_or_renew()  # a leads once, then dies without releasing
            assert not await b.try_acquire_or_renew()
            t0 = asyncio.get_running_loop().time()
            await b.acquire()
            waited = asyncio.get_running_loop().time() - t0
            assert waited >= 3  # not before the lease expired by b's own clock
            spec = (await api.get(LEASES, "le2", "kube-system"))["spec"]
            assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
            assert not await a.try_acquire_or_renew()  # the old holder cannot come back at once
    asyncio.run(main())


def test_bad_timings_refused():
    import pytest
    with pytest.raises(ValueError, match="renew_deadline"):
        LeaderElectionConfig("kube-system", "x", "a", lease_duration=10, renew_deadline=15)
