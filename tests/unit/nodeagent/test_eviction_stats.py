"""What eviction measures and where its results go: the node's signals (for real, on this
machine), per-pod stats from a fake runtime and real directories, allocatable from the hard
thresholds, the three pressure conditions in the Node's status, and image GC's reclaim."""

import asyncio
import os

from nodeagent.cri.api import Image
from nodeagent.eviction import PodStatsSource, parse_config
from nodeagent.eviction.stats import du, observe_node
from nodeagent.imagegc import ImageGC, ImageGCPolicy
from nodeagent.nodestatus import Machine, NodeIdentity, NodeStatus

Mi = 2**20


def test_observe_node_reads_every_signal(tmp_path):
    obs = observe_node(str(tmp_path), str(tmp_path / "no-such-store"))
    for signal in ("memory.available", "nodefs.available", "imagefs.available", "pid.available"):
        o = obs[signal]
        assert 0 <= o.available <= o.capacity, signal
    st = os.statvfs(tmp_path)
    assert obs["nodefs.available"].capacity == st.f_blocks * st.f_frsize
    assert obs["imagefs.available"].capacity == obs["nodefs.available"].capacity  # the same fs
    if st.f_files:
        assert obs["nodefs.inodesFree"].capacity == st.f_files and not obs["nodefs.inodesFree"].binary
    assert not obs["pid.available"].binary


class FakeRuntime:
    def __init__(self, stats):
        self.stats = stats

    async def container_stats(self, cid):
        return self.stats[cid]


def test_pod_stats_from_the_runtime_and_the_pods_directories(tmp_path):
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
           "spec": {"volumes": [{"name": "scratch", "emptyDir": {}},
                                {"name": "ram", "emptyDir": {"medium": "Memory"}}]}}
    status = {"containerStatuses": [
        {"name": "a", "containerID": "nodeagent://aaa", "state": {"running": {}}},
        {"name": "b", "containerID": "nodeagent://bbb", "state": {"running": {}}},
        {"name": "done", "containerID": "nodeagent://ccc", "state": {"terminated": {}}}]}
    idle = {"metadata": {"name": "idle", "namespace": "ns", "uid": "u2"}, "spec": {}}
    runtime = FakeRuntime({"aaa": {"memory_working_set_bytes": 10 * Mi, "process_count": 3},
                           "bbb": {"memory_working_set_bytes": 5 * Mi, "process_count": 1}})
    logs, pods, storage = tmp_path / "logs", tmp_path / "pods", tmp_path / "storage"
    (storage / "aaa" / "upper").mkdir(parents=True)
    (storage / "aaa" / "upper" / "big").write_bytes(b"x" * 65536)
    (logs / "ns_p_u1" / "a").mkdir(parents=True)
    (logs / "ns_p_u1" / "a" / "0.log").write_bytes(b"y" * 8192)
    empty = pods / "u1" / "volumes" / "kubernetes.io~empty-dir" / "scratch"
    empty.mkdir(parents=True)
    (empty / "f").write_bytes(b"z" * 4096)
    (empty.parent / "ram").mkdir()
    (empty.parent / "ram" / "g").write_bytes(b"r" * 4096)     # measured, not node disk
    src = PodStatsSource(runtime, {"u1": status}.get, str(logs), str(pods), str(storage))
    out = asyncio.run(src([pod, idle], disk=False))
    assert set(out) == {"u1"}                     # nothing runs in "idle": no stats, as upstream
    assert out["u1"].memory == 15 * Mi and out["u1"].processes == 4 and out["u1"].disk is None
    out = asyncio.run(src([pod], disk=True))["u1"]
    a = next(c for c in out.containers if c.name == "a")
    assert a.rootfs >= 65536 and a.logs >= 8192 and a.memory == 10 * Mi
    files = du(str(storage / "aaa" / "upper"))[0] + du(str(logs / "ns_p_u1" / "a"))[0] + \
        du(str(empty))[0]
    assert out.disk == files and out.inodes == 3     # big, 0.log and f
    assert dict(out.volumes) == {"scratch": du(str(empty))[0], "ram": du(str(empty.parent / "ram"))[0]}


def test_allocatable_keeps_back_the_hard_thresholds():
    m = Machine(4, 8 * 2**30, 100 * 2**30)                      # no eviction config: the defaults
    assert m.allocatable_numbers()["memory"] == 8 * 2**30 - 100 * Mi
    cfg = parse_config(["memory.available<1Gi,nodefs.available<20%"],
                       ["memory.available<2Gi"], ["memory.available=1m"])   # soft: not reserved
    from nodeagent.eviction import hard_reservation
    m = Machine(4, 8 * 2**30, 100 * 2**30, hard_reservation(cfg, "memory", "memory.available", 8 * 2**30),
                hard_reservation(cfg, "ephemeral-storage", "nodefs.available", 100 * 2**30))
    n = m.allocatable_numbers()
    assert n["memory"] == 7 * 2**30
    kept = 100 * 2**30 - n["ephemeral-storage"]             # 20% as a float32: a little more
    assert kept - 20 * 2**30 == 320
    assert m.allocatable()["memory"] == f"{7 * 2**30 // 1024}Ki"


def test_node_status_reads_all_three_pressure_conditions_from_eviction():
    class Ev:
        def under(self, c):
            return c in {"PIDPressure", "DiskPressure"}

    async def version():
        return "nodeagent", "1"
    ns = NodeStatus(None, NodeIdentity("n1", "10.0.0.1", "/"), Machine(1, 2**30, 2**30), version,
                    lambda: None)
    ns.eviction = Ev()
    conds = {c["type"]: c for c in asyncio.run(ns._status({}))["conditions"]}
    assert (conds["PIDPressure"]["status"], conds["PIDPressure"]["reason"], conds["PIDPressure"]["message"]) == (
        "True", "KubeletHasInsufficientPID", "kubelet has insufficient PID available")
    assert (conds["DiskPressure"]["status"], conds["DiskPressure"]["reason"]) == ("True", "KubeletHasDiskPressure")
    assert (conds["MemoryPressure"]["status"], conds["MemoryPressure"]["reason"]) == (
        "False", "KubeletHasSufficientMemory")


def test_image_gc_delete_unused_frees_every_unused_image():
    class C:
        def __init__(self, ref):
            self.image_ref = ref

    class Fake:
        def __init__(self):
            self.images, self.removed = {"old": 10, "busy": 20, "other": 30}, []

        async def list_containers(self):
            return [C("busy")]

        async def list_images(self):
            return [Image(id=i, repo_tags=(i,), repo_digests=(), size=s) for i, s in self.images.items()]

        async def remove_image(self, ref):
            self.removed.append(ref)
            self.images.pop(ref)
    fake = Fake()
    g = ImageGC(fake, fake, "/x", ImageGCPolicy(min_age=0), fs_usage=lambda _: (100, 99))
    assert asyncio.run(g.delete_unused()) == 40           # whatever the thresholds say
    assert sorted(fake.removed) == ["old", "other"]
