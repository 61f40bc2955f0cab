"""Node-pressure eviction (nodeagent/eviction/): the flags as the kubelet parses them, thresholds
and their grace periods, the transition period of conditions, minimum reclaim, node-level reclaim,
ranking, grace periods of the kill, the kubelet's messages and admission under pressure — with a
fake clock, pretend observations and pretend pod stats."""

import asyncio

import pytest

from nodeagent.eviction import (
    ContainerUsage, EvictionManager, Observation, PodUsage, ThresholdError, parse_config)
from nodeagent.eviction.rank import eviction_grace, message, rank
from nodeagent.resources import format_quantity

Mi = 2**20


def pod(name, requests=None, limits=None, priority=None, grace=None, **spec):
    res = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    spec = {"containers": [{"name": "c", "resources": res}], **spec}
    if priority is not None:
        spec["priority"] = priority
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"metadata": {"name": name, "namespace": "default", "uid": name}, "spec": spec}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Node:
    """An EvictionManager with everything it touches faked: observations, clock, pods, stats."""

    def __init__(self, config=None, pods=(), stats=None, **obs):
        self.obs = {"memory.available": Observation(500 * Mi, 1024 * Mi),
                    "nodefs.available": Observation(500 * Mi, 1000 * Mi),
                    "nodefs.inodesFree": Observation(50_000, 100_000, binary=False),
                    "imagefs.available": Observation(500 * Mi, 1000 * Mi),
                    "imagefs.inodesFree": Observation(50_000, 100_000, binary=False),
                    "pid.available": Observation(30_000, 32_768, binary=False)}
        self.set(**obs)
        self.pods, self.stats = list(pods), stats or {}
        self.clock, self.evicted, self.changes, self.events, self.reclaims = Clock(), [], [], [], []

        async def pod_stats(pods, disk):
            return {p["metadata"]["uid"]: self.stats[p["metadata"]["uid"]] for p in pods
                    if p["metadata"]["uid"] in self.stats}

        self.m = EvictionManager(config or parse_config(), "/x", lambda: self.pods,
                                 lambda p, msg, grace, disruption: self.evicted.append(
                                     (p["metadata"]["name"], msg, grace) + (() if disruption else ("no condition",))),
                                 lambda: self.changes.append(1), pod_stats=pod_stats,
                                 node_event=lambda *e: self.events.append(e),
                                 observe_fn=lambda: dict(self.obs), clock=self.clock)

    def set(self, **obs):
        for key, value in obs.items():
            signal = key.replace("_", ".").replace("inodesfree", "inodesFree")
            o = self.obs[signal]
            self.obs[signal] = Observation(value, o.capacity, o.binary)

    def sync(self, advance=0.0):
        self.clock.now += advance
        return asyncio.run(self.m.synchronize())


# --- the flags --------------------------------------------------------------------------------------
def test_defaults_are_the_kubelets():
    c = parse_config()
    assert [(t.signal, t.value.quantity, round(t.value.fraction or 0, 4), t.grace_period) for t in c.thresholds] == [
        ("memory.available", 100 * Mi, 0, 0), ("nodefs.available", None, 0.1, 0),
        ("nodefs.inodesFree", None, 0.05, 0), ("imagefs.available", None, 0.15, 0)]
    assert c.max_pod_grace_period == 0 and c.pressure_transition_period == 300


def test_flags_parse_like_the_kubelets():
    c = parse_config(["memory.available<1Gi, pid.available<1000", "nodefs.inodesFree<5%"],
                     ["memory.available<1.5Gi,imagefs.available<20%"],
                     ["memory.available=1m30s", "imagefs.available=2m"],
                     ["memory.available=500Mi,imagefs.available=5%"], 60, "30s")
    got = {(t.signal, t.hard): t for t in c.thresholds}
    assert set(got) == {("memory.available", True), ("pid.available", True),
                        ("nodefs.inodesFree", True), ("memory.available", False),
                        ("imagefs.available", False)}
    assert got["memory.available", False].grace_period == 90
    assert got["memory.available", False].value.quantity == 1536 * Mi
    assert got["memory.available", True].min_reclaim.quantity == 500 * Mi   # min reclaim: by signal
    assert got["imagefs.available", False].min_reclaim.fraction == pytest.approx(0.05)
    assert got["pid.available", True].value.text(0) == "1k"          # a Quantity prints "1000" so
    assert (c.max_pod_grace_period, c.pressure_transition_period) == (60, 30)
    # "0%" and "100%" are no threshold at all
    assert parse_config(["memory.available<0%,nodefs.available<100%"]).thresholds == ()


@pytest.mark.parametrize("args, text", [
    ({"hard": ["memory.available=100Mi"]}, "--eviction-hard: malformed pair 'memory.available=100Mi', expect string<string"),
    ({"hard": ["cpu.available<1"]}, "--eviction-hard: unsupported eviction signal cpu.available"),
    ({"hard": ["memory.available<200%"]}, "--eviction-hard: eviction percentage threshold memory.available must be <= 100%: 200%"),
    ({"hard": ["memory.available<-5%"]}, "--eviction-hard: eviction percentage threshold memory.available must be >= 0%: -5%"),
    ({"hard": ["memory.available<0"]}, "--eviction-hard: eviction threshold memory.available must be positive: 0"),
    ({"hard": ["memory.available<lots"]}, "--eviction-hard: memory.available: quantity 'lots' is not a valid"),
    ({"soft": ["memory.available<1Gi"]}, "--eviction-soft-grace-period: grace period must be specified for the soft eviction threshold memory.available"),
    ({"soft": ["memory.available<1Gi"], "soft_grace": ["memory.available=soon"]}, '--eviction-soft-grace-period: time: invalid duration "soon"'),
    ({"soft_grace": ["memory.available=-1s"]}, "--eviction-soft-grace-period: invalid eviction grace period specified: -1s, must be a positive value"),
    ({"soft_grace": ["memory.available<1m"]}, "--eviction-soft-grace-period: malformed pair 'memory.available<1m', expect string=string"),
    ({"min_reclaim": ["pid.available=-1"]}, "--eviction-minimum-reclaim: negative eviction minimum reclaim specified for pid.available"),
    ({"min_reclaim": ["pid.available=0%"]}, "--eviction-minimum-reclaim: eviction percentage minimum reclaim pid.available must be positive: 0%"),
    ({"transition": "-1m"}, "--eviction-pressure-transition-period: -1m must not be negative"),
    ({"transition": "5 minutes"}, '--eviction-pressure-transition-period: time: invalid duration "5 minutes"'),
])
def test_bad_flags_name_the_flag(args, text):
    with pytest.raises(ThresholdError) as e:
        parse_config(**args)
    assert str(e.value).startswith(text)


def test_quantities_print_as_resource_quantity_does():
    # BinarySI under 1024 prints as DecimalSI: 1000 bytes is "1k"
    assert [format_quantity(n) for n in (0, 1000, 1023, 1024, 1536, 50 * Mi, 3 * 2**30, 123456789)] == [
        "0", "1k", "1023", "1Ki", "1536", "50Mi", "3Gi", "123456789"]
    assert [format_quantity(n, binary=False) for n in (1000, 1500, 2_000_000, 523)] == [
        "1k", "1500", "2M", "523"]
    # a percentage's amount: int64(capacity * float32(percentage)), printed as BinarySI
    t = parse_config(["nodefs.available<10%"]).thresholds[0]
    assert t.value.amount(1000 * Mi) == 104857601 and t.value.text(1000 * Mi) == "104857601"
    assert t.value.text(10 * 2**30) == "1073741840"      # float32's 0.1 is a little more
    assert parse_config(["memory.available<1024Mi"]).thresholds[0].value.text(0) == "1Gi"
    assert parse_config(["memory.available<500M"]).thresholds[0].value.text(0) == "500M"


# --- hard thresholds, conditions and messages -------------------------------------------------------
def test_no_pressure_no_eviction():
    n = Node(pods=[pod("a")])
    assert n.sync() == [] and not n.evicted and not n.m.conditions and not n.changes


def test_hard_memory_threshold_evicts_at_once_with_the_kubelets_message():
    pods = [pod("guaranteed", limits={"memory": "64Mi", "cpu": "1"}),
            pod("burstable", requests={"memory": "32Mi"}), pod("besteffort")]
    stats = {"guaranteed": PodUsage((ContainerUsage("c", 60 * Mi),)),
             "burstable": PodUsage((ContainerUsage("c", 40 * Mi),)),
             "besteffort": PodUsage((ContainerUsage("c", 120 * Mi),))}
    n = Node(pods=pods, stats=stats, memory_available=50 * Mi)
    n.sync()
    assert n.m.conditions == {"MemoryPressure"} and n.changes == [1]
    assert n.evicted == [("besteffort", "The node was low on resource: memory. Threshold quantity: "
                          "100Mi, available: 50Mi. Container c was using 120Mi, request is 0, has "
                          "larger consumption of memory. ", 1.0)]
    assert n.events == [("Warning", "EvictionThresholdMet", "Attempting to reclaim memory")]


def test_memory_ranking_is_exceeds_requests_then_priority_then_usage_over_request():
    pods = [pod("low-user", requests={"memory": "100Mi"}),              # under its request
            pod("big", requests={"memory": "10Mi"}, priority=10),       # over, more overuse
            pod("small", requests={"memory": "10Mi"}, priority=10),     # over, less overuse
            pod("vip", requests={"memory": "10Mi"}, priority=1000),     # over, but important
            pod("unmeasured", priority=5)]                               # no stats: first
    stats = {"low-user": PodUsage((ContainerUsage("c", 90 * Mi),)),
             "big": PodUsage((ContainerUsage("c", 80 * Mi),)),
             "small": PodUsage((ContainerUsage("c", 20 * Mi),)),
             "vip": PodUsage((ContainerUsage("c", 500 * Mi),))}
    assert [p["metadata"]["name"] for p in rank(pods, "memory", stats)] == [
        "unmeasured", "big", "small", "vip", "low-user"]


def test_pid_pressure_ranks_by_priority_then_processes():
    pods = [pod("few", priority=0), pod("many", priority=0), pod("important-many", priority=5)]
    stats = {"few": PodUsage(processes=3), "many": PodUsage(processes=300),
             "important-many": PodUsage(processes=3000)}
    n = Node(parse_config(["pid.available<1k"]), pods, stats, pid_available=523)
    n.sync()
    assert n.m.conditions == {"PIDPressure"}
    assert n.evicted == [("many", "The node was low on resource: pids. Threshold quantity: 1k, "
                                  "available: 523. ", 1.0)]


def test_disk_pressure_reclaims_images_first_then_ranks_by_disk_use():
    pods = [pod("quiet"), pod("noisy", requests={"ephemeral-storage": "1Mi"})]
    stats = {"quiet": PodUsage((ContainerUsage("c", 0, 10 * Mi, Mi),), disk=11 * Mi),
             "noisy": PodUsage((ContainerUsage("c", 0, 300 * Mi, 20 * Mi),), disk=320 * Mi)}
    n = Node(pods=pods, stats=stats, nodefs_available=50 * Mi)

    async def reclaim_helps():
        n.reclaims.append(1)
        n.set(nodefs_available=400 * Mi)
    n.m.reclaim = reclaim_helps
    n.sync()
    assert n.reclaims == [1] and n.evicted == [] and n.m.conditions == {"DiskPressure"}

    async def reclaim_frees_nothing():
        n.reclaims.append(2)
    n.m.reclaim = reclaim_frees_nothing
    n.set(nodefs_available=50 * Mi)
    n.sync(10)
    assert n.reclaims == [1, 2]
    assert n.evicted == [("noisy", "The node was low on resource: ephemeral-storage. Threshold "
                          "quantity: 104857601, available: 50Mi. Container c was using 320Mi, "
                          "request is 1Mi, has larger consumption of ephemeral-storage. ", 1.0)]


def test_inode_pressure_is_disk_pressure():
    n = Node(pods=[pod("a")], stats={"a": PodUsage(inodes=10)}, nodefs_inodesfree=1000)
    n.sync()
    assert n.m.conditions == {"DiskPressure"}
    assert n.evicted[0][1] == ("The node was low on resource: inodes. Threshold quantity: 5000, "
                               "available: 1k. ")


def test_critical_pods_are_not_evicted_nor_refused():
    critical = pod("dns", priority=2_000_000_000)
    n = Node(pods=[critical, pod("user", requests={"memory": "1Gi"})], memory_available=50 * Mi)
    n.sync()
    assert [e[0] for e in n.evicted] == ["user"]
    assert n.m.admit(pod("another-critical", priority=2_000_001_000)) is None
    n = Node(pods=[critical], memory_available=50 * Mi)
    n.sync()
    assert n.evicted == []


# --- soft thresholds ------------------------------------------------------------------------------
def soft(**extra):
    return parse_config(["memory.available<100Mi"], ["memory.available<300Mi"],
                        ["memory.available=1m"], **extra)


def test_a_soft_threshold_acts_only_once_met_for_its_grace_period():
    n = Node(soft(), pods=[pod("a", grace=45)], memory_available=200 * Mi)
    n.sync()
    assert n.m.conditions == {"MemoryPressure"} and n.evicted == []   # the condition at once
    n.sync(30)
    assert n.evicted == []
    n.set(memory_available=400 * Mi)                                   # recovered: forgotten
    n.sync(20)
    n.set(memory_available=200 * Mi)
    n.sync(20)                                                         # met again: a new start
    n.sync(59)
    assert n.evicted == []
    n.sync(1)
    assert [(e[0], e[2]) for e in n.evicted] == [("a", 45.0)]          # min(0 → its own, 45)


def test_soft_eviction_grace_is_min_of_max_pod_grace_and_the_pods():
    cfg = soft(max_pod_grace=20)
    t = next(t for t in cfg.thresholds if not t.hard)
    hard = next(t for t in cfg.thresholds if t.hard)
    assert eviction_grace(pod("long", grace=120), t, 20) == 20
    assert eviction_grace(pod("short", grace=5), t, 20) == 5
    assert eviction_grace(pod("default"), t, 20) == 20
    assert eviction_grace(pod("own", grace=45), t, 0) == 45       # 0: the pod's own
    assert eviction_grace(pod("zero", grace=0), t, 20) == 1       # never less than 1 s
    assert eviction_grace(pod("long", grace=120), hard, 20) == 1  # hard: immediate
    n = Node(cfg, pods=[pod("a", grace=120)], memory_available=200 * Mi)
    n.sync()
    n.sync(60)
    assert n.evicted[0][2] == 20.0


def test_a_hard_threshold_does_not_wait_for_a_soft_ones_grace():
    n = Node(soft(), pods=[pod("a", grace=45)], memory_available=50 * Mi)
    n.sync()
    assert [(e[0], e[2]) for e in n.evicted] == [("a", 1.0)]


# --- the transition period and minimum reclaim ------------------------------------------------------
def test_the_condition_stays_for_the_transition_period_after_recovery():
    n = Node(parse_config(transition="5m"), pods=[], memory_available=50 * Mi)
    n.sync()
    assert n.m.conditions == {"MemoryPressure"}
    n.set(memory_available=500 * Mi)
    n.sync(10)
    assert n.m.conditions == {"MemoryPressure"}         # recovered 0 s ago
    n.sync(289)
    assert n.m.conditions == {"MemoryPressure"} and n.changes == [1]
    n.sync(1)                                             # last seen 300 s ago
    assert n.m.conditions == set() and n.changes == [1, 1]
    assert n.m.admit(pod("be")) is None


def test_minimum_reclaim_keeps_a_met_threshold_until_signal_clears_it_by_that_much():
    cfg = parse_config(["memory.available<100Mi"], min_reclaim=["memory.available=200Mi"],
                       transition="5s")
    n = Node(cfg, pods=[pod("a"), pod("b")], memory_available=50 * Mi)
    n.sync()
    assert [e[0] for e in n.evicted] == ["a"]
    n.pods = [pod("b")]
    n.set(memory_available=250 * Mi)                      # above 100Mi, below 100Mi + 200Mi
    n.sync(10)
    assert [e[0] for e in n.evicted] == ["a", "b"] and n.m.conditions == {"MemoryPressure"}
    n.pods = []
    n.set(memory_available=350 * Mi)                      # cleared by the minimum: resolved
    n.sync(10)
    assert n.m.conditions == set() and n.m.met == []


def test_a_zero_transition_period_reports_no_condition():
    """nodeConditionsObservedSince keeps a condition seen less than the period ago: with 0 s not
    even the one seen in this very pass (upstream's arithmetic)."""
    n = Node(parse_config(transition="0s"), pods=[pod("a")], memory_available=50 * Mi)
    n.sync()
    assert n.m.conditions == set() and [e[0] for e in n.evicted] == ["a"]


# --- admission --------------------------------------------------------------------------------------
def test_admission_under_pressure():
    n = Node(memory_available=50 * Mi)
    n.sync()
    r = n.m.admit(pod("be"))
    assert (r.reason, r.message) == ("Evicted", "The node had condition: [MemoryPressure]. ")
    assert n.m.admit(pod("bu", requests={"memory": "1Mi"})) is None      # only BestEffort, for memory
    tolerant = pod("be-tolerant", tolerations=[{"key": "node.kubernetes.io/memory-pressure",
                                                "operator": "Exists", "effect": "NoSchedule"}])
    assert n.m.admit(tolerant) is None
    everything = pod("be-all", tolerations=[{"operator": "Exists"}])
    assert n.m.admit(everything) is None
    for other in ({"key": "node.kubernetes.io/disk-pressure", "operator": "Exists"},
                  {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists",
                   "effect": "NoExecute"},
                  {"key": "node.kubernetes.io/memory-pressure", "value": "x"}):
        assert n.m.admit(pod("be-other", tolerations=[other])) is not None, other
    n = Node(nodefs_available=50 * Mi)                                   # 5% free < 10%
    n.sync()
    assert n.m.conditions == {"DiskPressure"}
    assert n.m.admit(pod("bu", requests={"memory": "1Mi"})).message == "The node had condition: [DiskPressure]. "
    n = Node(parse_config(["pid.available<1k", "memory.available<100Mi"]), pid_available=10,
             memory_available=10 * Mi)
    n.sync()
    assert n.m.admit(pod("bu", requests={"memory": "1Mi"})).message == \
        "The node had condition: [MemoryPressure PIDPressure]. "


def test_message_without_stats_or_for_a_container_under_its_request():
    cfg = parse_config()
    obs = {"memory.available": Observation(51200 * 1024 + 512, 1024 * Mi)}
    p = pod("p", requests={"memory": "64Mi"})
    assert message("memory", p, None, list(cfg.thresholds), obs) == (
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 52429312. ")
    assert message("memory", p, PodUsage((ContainerUsage("c", 10 * Mi),)), list(cfg.thresholds), obs) \
        .endswith("available: 52429312. ")


# --- local storage limits ---------------------------------------------------------------------------
def test_local_storage_limits_evict_whatever_the_node_signals_say():
    """emptyDir sizeLimit, then the pod's summed ephemeral-storage limits, then a container's: each
    pod over one goes at once (grace 1 s), without a DisruptionTarget condition; the node itself
    is under no pressure at all."""
    def limited(name, volumes=(), limits=None):
        return pod(name, limits=limits, volumes=list(volumes))
    pods = [limited("vol", [{"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}}]),
            limited("podlimit", limits={"ephemeral-storage": "2Mi"}),
            limited("fine", [{"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}],
                    limits={"ephemeral-storage": "1Gi"}),
            pod("unlimited")]
    pods[1]["spec"]["containers"].append({"name": "d", "resources": {"limits": {"ephemeral-storage": "1Mi"}}})
    stats = {"vol": PodUsage((ContainerUsage("c", 0, 0, 0),), disk=2 * Mi, volumes=(("scratch", 2 * Mi),)),
             "podlimit": PodUsage((ContainerUsage("c", 0, Mi, 0), ContainerUsage("d", 0, 3 * Mi, 0)),
                                  disk=4 * Mi),
             "fine": PodUsage((ContainerUsage("c", 0, Mi, 0),), disk=2 * Mi, volumes=(("scratch", Mi),)),
             "unlimited": PodUsage((ContainerUsage("c", 0, 10 * 2**30, 0),), disk=10 * 2**30)}
    n = Node(pods=pods, stats=stats)
    assert [p["metadata"]["name"] for p in n.sync()] == ["vol", "podlimit"]
    assert n.evicted == [
        ("vol", 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". ', 1.0, "no condition"),
        ("podlimit", "Pod ephemeral local storage usage exceeds the total limit of containers 3Mi. ",
         1.0, "no condition")]
    assert not n.m.conditions
    # a container over its own limit while the pod as a whole is not
    p = pod("one", limits={"ephemeral-storage": "1Mi"})
    p["spec"]["containers"].append({"name": "d", "resources": {"limits": {"ephemeral-storage": "100Mi"}}})
    n = Node(pods=[p], stats={"one": PodUsage((ContainerUsage("c", 0, Mi, Mi), ContainerUsage("d", 0, 0, 0)),
                                              disk=2 * Mi)})
    n.sync()
    assert n.evicted == [("one", 'Container c exceeded its local ephemeral storage limit "1Mi". ',
                          1.0, "no condition")]
