"""Node-pressure eviction basics (nodeagent/eviction.py): thresholds, conditions, which pod goes,
the kubelet's messages, and what admission refuses under pressure — with pretend observations."""

import asyncio

import pytest

from nodeagent.errors import AgentError
from nodeagent.eviction import EvictionManager, parse_eviction_hard

Mi = 2**20


def pod(name, requests=None, limits=None):
    res = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    return {"metadata": {"name": name, "namespace": "default", "uid": name},
            "spec": {"containers": [{"name": "c", "resources": res}]}}


def manager(mem_available, pods, disk_free=500 * Mi):
    evicted, changes = [], []
    m = EvictionManager(parse_eviction_hard("memory.available<100Mi,nodefs.available<10%"), "/x",
                        lambda: pods, lambda p, msg: evicted.append((p["metadata"]["name"], msg)),
                        lambda: changes.append(1),
                        observe_fn=lambda _: {"memory.available": (mem_available, 1024 * Mi),
                                              "nodefs.available": (disk_free, 1000 * Mi)})
    return m, evicted, changes


def test_thresholds_parse_like_the_kubelets_flag():
    t = parse_eviction_hard("memory.available<100Mi,nodefs.available<10%")
    assert [(x.signal, x.quantity, x.percent) for x in t] == [
        ("memory.available", 100 * Mi, None), ("nodefs.available", None, 10.0)]
    with pytest.raises(AgentError, match="signal 'pid.available' is not supported"):
        parse_eviction_hard("pid.available<10")
    with pytest.raises(AgentError, match="is not SIGNAL<QUANTITY"):
        parse_eviction_hard("memory.available=100Mi")


def test_no_pressure_no_eviction():
    m, evicted, changes = manager(500 * Mi, [pod("a")])
    assert asyncio.run(m.synchronize()) is None and not evicted and not m.conditions and not changes


def test_memory_pressure_evicts_besteffort_first_with_the_kubelets_message():
    pods = [pod("guaranteed", limits={"memory": "64Mi", "cpu": "1"}),
            pod("burstable", requests={"memory": "32Mi"}), pod("besteffort")]
    m, evicted, changes = manager(50 * Mi, pods)
    asyncio.run(m.synchronize())
    assert m.conditions == {"MemoryPressure"} and changes == [1]
    assert evicted == [("besteffort", "The node was low on resource: memory. Threshold quantity: "
                                      "100Mi, available: 51200Ki. ")]


def test_admission_under_pressure():
    m, _, _ = manager(50 * Mi, [])
    asyncio.run(m.synchronize())
    r = m.admit(pod("be"))
    assert (r.reason, r.message) == ("Evicted", "The node had condition: [MemoryPressure]. ")
    assert m.admit(pod("bu", requests={"memory": "1Mi"})) is None      # only BestEffort, for memory
    m, _, _ = manager(500 * Mi, [], disk_free=50 * Mi)                  # 5% free < 10%
    asyncio.run(m.synchronize())
    assert m.conditions == {"DiskPressure"}
    assert m.admit(pod("bu", requests={"memory": "1Mi"})).message == "The node had condition: [DiskPressure]. "
