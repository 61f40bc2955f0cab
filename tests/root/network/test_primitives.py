"""The network primitives on real namespaces: handles, the netns helper, idempotent devices/routes."""

from __future__ import annotations

import json

import pytest

from tests.netsim import SimNet


@pytest.fixture
def sim():
    s = SimNet()
    s.add_ns("node")
    yield s
    s.cleanup()


def test_handles_are_created_held_and_deleted_by_both_access_paths(sim, tmp_path):
    d = sim.dir / "handles"
    out = sim.py("node", f"""
from network.netns import ForkAccess, HelperAccess, create_netns, delete_netns, namespace_id
from runtime.sys import real
s = real()
helper = HelperAccess()
made = {{}}
for name, access in (("viafork", ForkAccess(s)), ("viahelper", helper)):
    path = {str(d)!r} + "/" + name
    changes = create_netns(path, access, s)
    again = create_netns(path, access, s)                 # idempotent
    made[name] = [namespace_id(path), [c.verb for c in changes], again]
ids_differ = made["viafork"][0] != made["viahelper"][0] != namespace_id("/proc/self/ns/net")
mountinfo = open("/proc/self/mountinfo").read()
shared = [l for l in mountinfo.splitlines() if " {str(d)} " in l]
gone = {{}}
for name in made:
    path = {str(d)!r} + "/" + name
    gone[name] = [[c.verb for c in delete_netns(path, s)], delete_netns(path, s), os.path.exists(path)]
helper.close()
s.umount2({str(d)!r}, 2)
report({{"made": made, "ids_differ": ids_differ, "shared": shared, "gone": gone}})
""")
    for name in ("viafork", "viahelper"):
        ident, verbs, again = out["made"][name]
        assert ident and "create" in verbs and again == []
        assert out["gone"][name] == [["delete"], [], False]
    assert out["ids_differ"] is True
    assert out["shared"] and "shared:" in out["shared"][0]


def test_a_socket_from_the_helper_sees_the_pods_devices_not_the_nodes(sim):
    pod = sim.add_ns("pod")
    sim.sh("pod", "ip", "link", "add", "only-in-pod", "type", "veth", "peer", "name", "peer-in-pod")
    stale = sim.dir / "stale"
    stale.write_text("")
    out = sim.py("node", f"""
from network.netns import ForkAccess, HelperAccess
from network.errors import NetnsGone
from network.rtnl import pod_session
from network.links import list_links
from runtime.sys import real
seen = {{}}
fds_before = sorted(os.listdir("/proc/self/fd"))
helper = HelperAccess()
for name, access in (("fork", ForkAccess(real())), ("helper", helper)):
    for _ in range(5):
        with pod_session(access, {str(pod)!r}) as ipr:
            seen[name] = sorted(l.name for l in list_links(ipr))
    try:
        access.netlink_socket({str(stale)!r})
        seen[name + "-stale"] = "opened?!"
    except NetnsGone as e:
        seen[name + "-stale"] = "gone"
    try:
        access.netlink_socket("/nonexistent/ns")
    except NetnsGone:
        seen[name + "-missing"] = "gone"
helper.close()
seen["leaked fds"] = sorted(set(os.listdir("/proc/self/fd")) - set(fds_before))
report(seen)
""")
    assert out["fork"] == out["helper"] == ["lo", "only-in-pod", "peer-in-pod"]
    assert out["fork-stale"] == out["helper-stale"] == "gone"
    assert out["fork-missing"] == out["helper-missing"] == "gone"
    assert out["leaked fds"] == []


def test_bridge_address_and_route_operations_are_idempotent(sim):
    out = sim.py("node", """
import ipaddress
from network.rtnl import node_session
from network.links import ensure_bridge
from network.addrs import ensure_address, ensure_route, list_routes
with node_session() as ipr:
    br, first = ensure_bridge(ipr, "natest0", 1400)
    _, second = ensure_bridge(ipr, "natest0", 1400)
    a1 = ensure_address(ipr, br, ipaddress.ip_interface("10.50.0.1/24"))
    a2 = ensure_address(ipr, br, ipaddress.ip_interface("10.50.0.1/24"))
    r1 = ensure_route(ipr, ipaddress.ip_network("10.60.0.0/16"), ipaddress.ip_address("10.50.0.9"), br, onlink=True)
    r2 = ensure_route(ipr, ipaddress.ip_network("10.60.0.0/16"), ipaddress.ip_address("10.50.0.9"), br, onlink=True)
    r3 = ensure_route(ipr, ipaddress.ip_network("10.60.0.0/16"), ipaddress.ip_address("10.50.0.8"), br, onlink=True)
report({"first": [c.line() for c in first], "second": second, "a": [len(a1), len(a2)],
        "r": [[c.verb for c in r1], r2, [c.verb for c in r3]], "mac": br.mac})
""")
    assert out["first"] == ["create bridge natest0", "set bridge natest0 up"]
    assert out["second"] == [] and out["a"] == [1, 0]
    assert out["r"] == [["add"], [], ["set"]]
    route = json.loads(sim.sh("node", "ip", "-j", "route", "show", "10.60.0.0/16").stdout)[0]
    assert route["gateway"] == "10.50.0.8"
    link = json.loads(sim.sh("node", "ip", "-j", "link", "show", "natest0").stdout)[0]
    assert link["address"] == out["mac"] and link["mtu"] == 1400


def test_host_gw_refuses_a_peer_it_cannot_reach_directly(sim):
    sim.sh("node", "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0-peer")
    sim.sh("node", "ip", "addr", "add", "192.168.56.11/24", "dev", "eth0")
    sim.sh("node", "ip", "link", "set", "eth0", "up")
    sim.sh("node", "ip", "link", "set", "eth0-peer", "up")
    out = sim.py("node", """
from network.rtnl import node_session
from network.crossnode import Node, reconcile
from network.errors import NetworkError
nodes = [Node.parse("n1,192.168.56.11,10.244.1.0/24"), Node.parse("far,172.16.9.9,10.244.2.0/24")]
with node_session() as ipr:
    try:
        reconcile(ipr, "host-gw", nodes[0], nodes)
        report("no error")
    except NetworkError as e:
        report(str(e))
""")
    assert "172.16.9.9 is not directly reachable" in out and "vxlan" in out
