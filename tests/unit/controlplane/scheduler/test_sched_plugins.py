"""The filters and scores on plain dicts: each plugin's verdict and upstream's wording."""

import pytest

from controlplane.scheduler import quantity
from controlplane.scheduler.algorithm import FitError
from controlplane.scheduler.errors import SchedulerError
from controlplane.scheduler.podinfo import pod_info, pod_requests
from tests.unit.controlplane.scheduler.objects import Sched, node, pod


def reasons(s: Sched, p: dict) -> str:
    with pytest.raises(FitError) as e:
        s.place(p)
    return e.value.message()


def test_quantities():
    assert quantity.parse("cpu", "500m") == 500
    assert quantity.parse("cpu", "2") == 2000
    assert quantity.parse("cpu", "0.1") == 100
    assert quantity.parse("memory", "1Gi") == 2**30
    assert quantity.parse("memory", "1G") == 10**9
    assert quantity.parse("memory", "1e3") == 1000
    assert quantity.parse("memory", 128) == 128
    with pytest.raises(SchedulerError, match="^'12xb' is not a quantity$"):
        quantity.parse("memory", "12xb")


def test_requests_take_init_max_sidecars_and_overhead():
    spec = {"containers": [{"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                           {"resources": {"requests": {"cpu": "200m"}}}],
            "initContainers": [{"resources": {"requests": {"cpu": "1", "memory": "32Mi"}}}],
            "overhead": {"cpu": "50m", "memory": "10Mi"}}
    req, nz_cpu, nz_mem = pod_requests(spec)
    assert req["cpu"] == 1000 + 50  # the init container (alone) needs more than the two together
    assert req["memory"] == (64 + 10) * 2**20
    # a sidecar (restartable init container) runs beside the containers: it adds up
    spec["initContainers"] = [{"restartPolicy": "Always", "resources": {"requests": {"cpu": "500m"}}}]
    assert pod_requests(spec)[0]["cpu"] == 100 + 200 + 500 + 50
    # scoring counts a container without requests as 100m / 200Mi
    _, nz_cpu, nz_mem = pod_requests({"containers": [{}, {}]})
    assert (nz_cpu, nz_mem) == (200, 400 * 2**20)


def test_resources_fit_and_message():
    s = Sched([node("a", cpu="1"), node("b", cpu="2", memory="1Gi"), node("c", pods=1)],
              [pod("x", node_name="c")])
    assert s.place(pod("big", cpu="1500m")) == "b"
    # a: cpu; b: cpu and memory; c: the pod count (a node gives every reason of its first failing filter)
    assert reasons(s, pod("huge", cpu="3", memory="2Gi")) == \
        "0/3 nodes are available: 1 Insufficient memory, 1 Too many pods, 2 Insufficient cpu."


def test_message_is_sorted_as_strings():
    s = Sched([node("a", cpu="1"), node("b", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]),
               node("c", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}])])
    assert reasons(s, pod("p", cpu="2")) == \
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {k: v}."


def test_extended_resources_and_zero_request_pods():
    s = Sched([node("a")])
    assert "1 Insufficient example.com/gpu" in reasons(s, pod("g", containers=[
        {"name": "c", "resources": {"requests": {"example.com/gpu": "1"}}}]))
    for i in range(110):
        s.place(pod(f"empty{i}"))
    assert reasons(s, pod("one-more")) == "0/1 nodes are available: 1 Too many pods."


def test_taints_and_tolerations():
    t = [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]
    s = Sched([node("tainted", taints=t), node("noexec", taints=[{"key": "x", "effect": "NoExecute"}])])
    assert reasons(s, pod("p")) == ("0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, "
                                   "1 node(s) had untolerated taint {x: }.")
    assert s.place(pod("eq", tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db",
                                             "effect": "NoSchedule"}])) == "tainted"
    assert s.place(pod("any", tolerations=[{"operator": "Exists"}])) in ("tainted", "noexec")
    assert "untolerated" in reasons(s, pod("wrongvalue", tolerations=[{"key": "dedicated", "value": "web"}]))


def test_prefer_no_schedule_is_a_score():
    s = Sched([node("soft", taints=[{"key": "k", "effect": "PreferNoSchedule"}]), node("clean")])
    assert {s.place(pod(f"p{i}"), assume=False) for i in range(20)} == {"clean"}
    s2 = Sched([node("soft", taints=[{"key": "k", "effect": "PreferNoSchedule"}])])
    assert s2.place(pod("only")) == "soft"


def test_unschedulable_node():
    s = Sched([node("cordoned", unschedulable=True)])
    assert reasons(s, pod("p")) == "0/1 nodes are available: 1 node(s) were unschedulable."
    assert s.place(pod("ds", tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                                           "effect": "NoSchedule"}])) == "cordoned"


def test_node_selector_and_required_affinity():
    s = Sched([node("ssd", labels={"disk": "ssd", "gen": "5"}), node("hdd", labels={"disk": "hdd", "gen": "3"})])
    assert s.place(pod("sel", nodeSelector={"disk": "ssd"})) == "ssd"
    aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]}]}]}}}
    assert s.place(pod("gt", affinity=aff)) == "ssd"
    byname = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["hdd"]}]}]}}}
    assert s.place(pod("field", affinity=byname)) == "hdd"
    assert reasons(s, pod("none", nodeSelector={"disk": "nvme"})) == \
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."


def test_preferred_node_affinity_scores():
    pref = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 50, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}}]}}
    s = Sched([node("a", labels={"zone": "a"}), node("b", labels={"zone": "b"}), node("c", labels={"zone": "c"})])
    assert {s.place(pod(f"p{i}", affinity=pref), assume=False) for i in range(10)} == {"b"}


def test_host_ports():
    s = Sched([node("a"), node("b")])
    port = [{"containerPort": 80, "hostPort": 8080, "protocol": "TCP"}]
    first, second = s.place(pod("p1", ports=port)), s.place(pod("p2", ports=port))
    assert {first, second} == {"a", "b"}
    assert reasons(s, pod("p3", ports=port)) == \
        "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports."
    # another protocol or a specific address on a different port is free
    assert s.place(pod("udp", ports=[{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]))


def test_least_allocated_spreads_and_balanced():
    s = Sched([node(f"n{i}") for i in range(4)])
    placed = [s.place(pod(f"p{i}", cpu="500m", memory="512Mi")) for i in range(8)]
    assert sorted(placed.count(f"n{i}") for i in range(4)) == [2, 2, 2, 2]


def test_image_locality():
    img = [{"names": ["docker.io/library/big:1.0"], "sizeBytes": 800 * 2**20}]
    s = Sched([node("has", images=img), node("empty1"), node("empty2")])
    assert {s.place(pod(f"p{i}", image="docker.io/library/big:1.0"), assume=False) for i in range(10)} == {"has"}


AFF_KEY = "kubernetes.io/hostname"


def _term(key, app, topology=AFF_KEY):
    return {"labelSelector": {"matchLabels": {key: app}}, "topologyKey": topology}


def test_pod_affinity_and_anti_affinity():
    zones = {"a": "z1", "b": "z1", "c": "z2"}
    s = Sched([node(n, labels={"zone": z}) for n, z in zones.items()],
              [pod("db", labels={"app": "db"}, node_name="b")])
    near = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [_term("app", "db")]}}
    assert s.place(pod("web", affinity=near)) == "b"
    same_zone = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [_term("app", "db", "zone")]}}
    assert {s.place(pod(f"z{i}", affinity=same_zone), assume=False) for i in range(10)} <= {"a", "b"}
    away = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [_term("app", "db", "zone")]}}
    assert s.place(pod("far", affinity=away)) == "c"
    missing = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [_term("app", "cache")]}}
    assert reasons(s, pod("lonely", affinity=missing)) == \
        "0/3 nodes are available: 3 node(s) didn't match pod affinity rules."
    # the first of a group with affinity to itself may go anywhere
    assert s.place(pod("first", labels={"app": "cache"}, affinity=missing))


def test_existing_pods_anti_affinity_is_symmetric():
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [_term("app", "web")]}}
    s = Sched([node("a"), node("b")], [pod("loner", labels={"app": "x"}, affinity=anti, node_name="a")])
    assert {s.place(pod(f"w{i}", labels={"app": "web"}), assume=False) for i in range(10)} == {"b"}
    s.place(pod("w", labels={"app": "web"}))
    s.cache.set_node(node("b", unschedulable=True))
    assert "node(s) didn't satisfy existing pods anti-affinity rules" in reasons(s, pod("w2", labels={"app": "web"}))


def test_spread_over_zones_hard():
    nodes = [node(f"n{i}", labels={"topology.kubernetes.io/zone": f"z{i % 3}"}) for i in range(6)]
    s = Sched(nodes)
    spread = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "web"}}}]
    placed = [s.place(pod(f"w{i}", labels={"app": "web"}, topologySpreadConstraints=spread)) for i in range(9)]
    zones = [int(n[1:]) % 3 for n in placed]
    assert sorted(zones.count(z) for z in range(3)) == [3, 3, 3]
    # a node without the key is rejected for good
    s.cache.set_node(node("nolabel"))
    for n in nodes:
        s.cache.set_node({**n, "spec": {"unschedulable": True}})
    assert "1 node(s) didn't match pod topology spread constraints (missing required label)" in \
        reasons(s, pod("x", labels={"app": "web"}, topologySpreadConstraints=spread))


def test_spread_skew_rejects():
    nodes = [node("a", labels={"zone": "1"}), node("b", labels={"zone": "2"})]
    s = Sched(nodes, [pod("w0", labels={"app": "w"}, node_name="a"), pod("w1", labels={"app": "w"}, node_name="a")])
    spread = [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "w"}}}]
    assert s.place(pod("w2", labels={"app": "w"}, topologySpreadConstraints=spread)) == "b"
    s.cache.set_node(node("b", labels={"zone": "2"}, taints=[{"key": "k", "effect": "NoSchedule"}]))
    # zone 2 is still a domain (nodeTaintsPolicy Ignore): zone 1 would have skew 3 - 1 = 2
    msg = reasons(s, pod("w3", labels={"app": "w"}, topologySpreadConstraints=spread))
    assert msg == ("0/2 nodes are available: 1 node(s) didn't match pod topology spread constraints, "
                   "1 node(s) had untolerated taint {k: }.")


def test_spread_soft_prefers_emptier_domain():
    s = Sched([node("a", labels={"zone": "1"}), node("b", labels={"zone": "2"})],
              [pod(f"w{i}", labels={"app": "w"}, node_name="a") for i in range(3)])
    soft = [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
             "labelSelector": {"matchLabels": {"app": "w"}}}]
    assert {s.place(pod(f"x{i}", labels={"app": "w"}, topologySpreadConstraints=soft), assume=False)
            for i in range(10)} == {"b"}


def test_bad_selector_is_one_clear_error():
    bad = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "k", "operator": "Near"}]}]}}}
    with pytest.raises(SchedulerError, match=r"^spec.affinity.nodeAffinity.required.nodeSelectorTerms\[0\].matchExpressions\[0\].operator: unsupported value .Near.$"):
        pod_info(pod("bad", affinity=bad))


def test_preferred_pod_affinity_and_anti_affinity_scores():
    s = Sched([node("a", labels={"zone": "1"}), node("b", labels={"zone": "2"}), node("c", labels={"zone": "3"})],
              [pod("cache", labels={"app": "cache"}, node_name="b"), pod("noisy", labels={"app": "noisy"}, node_name="c")])
    near = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": _term("app", "cache", "zone")}]}}
    assert {s.place(pod(f"n{i}", affinity=near), assume=False) for i in range(10)} == {"b"}
    away = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": _term("app", "noisy", "zone")}]}}
    assert "c" not in {s.place(pod(f"f{i}", affinity=away), assume=False) for i in range(20)}
    # symmetry: an existing pod's preferred affinity towards us counts too
    likes_web = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": _term("app", "web", "zone")}]}}
    s.cache.set_pod(pod_info(pod("fan", affinity=likes_web, node_name="a")))
    assert {s.place(pod(f"w{i}", labels={"app": "web"}), assume=False) for i in range(10)} == {"a"}


def test_system_default_spread_for_controlled_pods():
    owner = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "rs-1", "controller": True}]
    nodes = [node(f"n{i}", labels={"topology.kubernetes.io/zone": f"z{i % 2}"}) for i in range(4)]
    # n0 and n2 (zone z0) run two of the ReplicaSet's pods each; n1 and n3 (zone z1) are busier,
    # with four pods each of no controller: least-allocated alone would pick z0, spreading wins
    s = Sched(nodes, [pod(f"old{i}", node_name=f"n{2 * (i % 2)}", metadata_owner=owner) for i in range(4)]
              + [pod(f"stranger{i}", node_name=f"n{1 + 2 * (i % 2)}") for i in range(8)])
    # (ties between equal nodes are broken at random: 40 tries see both with near certainty —
    # with 10, one run in ~250 saw only one of the two)
    placed = {s.place(pod(f"new{i}", metadata_owner=owner), assume=False) for i in range(40)}
    assert placed == {"n1", "n3"}
    # a pod of no controller is not spread: it goes where there is most room
    assert {s.place(pod(f"free{i}"), assume=False) for i in range(40)} == {"n0", "n2"}


def test_affinity_namespaces_and_namespace_selector():
    ns_labels = {"default": {}, "team-a": {"team": "a"}, "team-b": {"team": "b"}}
    s = Sched([node("x"), node("y"), node("z")],
              [pod("db-a", ns="team-a", labels={"app": "db"}, node_name="x"),
               pod("db-b", ns="team-b", labels={"app": "db"}, node_name="y")])

    def near(**ns):
        return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname", **ns}]}}

    def place(affinity):  # where 20 tries land (ties between equal nodes are broken at random)
        return {s.algorithm.schedule(pod_info(pod("p", affinity=affinity), ns_labels)).node for _ in range(20)}

    assert place(near(namespaces=["team-b"])) == {"y"}
    assert place(near(namespaceSelector={"matchLabels": {"team": "a"}})) == {"x"}
    assert place(near(namespaceSelector={})) == {"x", "y"}  # every namespace
    # neither: the pod's own namespace (default), where no db runs: only the self-match rule
    # would let it anywhere, and it does not match its own term
    with pytest.raises(FitError):
        s.algorithm.schedule(pod_info(pod("p", affinity=near()), ns_labels))
    # relabelling a namespace is seen through the live mapping
    ns_labels["team-b"] = {"team": "a"}
    assert place(near(namespaceSelector={"matchLabels": {"team": "a"}})) == {"x", "y"}


def test_nonzero_requests_add_overhead_and_init_max():
    _, nz_cpu, nz_mem = pod_requests({"containers": [{}], "overhead": {"cpu": "50m"}})
    assert (nz_cpu, nz_mem) == (150, 200 * 2**20)
    _, nz_cpu, _ = pod_requests({"containers": [{}], "initContainers": [{"resources": {"requests": {"cpu": "1"}}}]})
    assert nz_cpu == 1000


def test_fitting_fast_path_matches_the_filter():
    """algorithm.fitting (one comprehension per chunk) accepts exactly the nodes NodeResourcesFit's
    filter accepts, in order, stopping at the same node — over full, over-committed and empty
    nodes, for pods with and without cpu/memory requests."""
    import random

    from controlplane.scheduler.algorithm import fitting
    from controlplane.scheduler.framework.plugins.noderesources import NodeResourcesFit

    rng = random.Random(7)
    s = Sched([node(f"n{i:03d}", cpu=rng.choice(["1", "2", "500m"]), memory=rng.choice(["1Gi", "2Gi"]),
                    pods=rng.choice([1, 3, 110])) for i in range(300)])
    for i in range(600):  # bound pods, some over-committing their node (as a kubelet may admit)
        s.cache.set_pod(pod_info(pod(f"b{i}", cpu=rng.choice([None, "100m", "700m"]), memory=rng.choice([None, "300Mi"]),
                                     node_name=f"n{rng.randrange(300):03d}")))
    nodes, fit = s.cache.node_list(), NodeResourcesFit()
    for cpu, mem in ((None, None), ("100m", None), (None, "100Mi"), ("250m", "500Mi"), ("3", None)):
        p = pod_info(pod("new", cpu=cpu, memory=mem))
        ok = [ni for ni in nodes if fit.filter({}, p, ni) is None]
        for want in (1, 5, 50, 1000):
            got, visited = fitting(nodes, p, want)
            assert got == ok[:want], (cpu, mem, want)
            assert visited == (nodes.index(ok[want - 1]) + 1 if len(ok) >= want else len(nodes))
