"""The desired cross-node routes (network/crossnode.py), computed from the node list."""

from __future__ import annotations

import ipaddress

import pytest

from network.crossnode import Node, desired_routes
from network.errors import NetworkError
from network.vxlan import vtep_ip, vtep_mac

NODES = [Node.parse("n1,192.168.56.11,10.244.1.0/24"), Node.parse("n2,192.168.56.12,10.244.2.0/24"),
         Node.parse("n3,192.168.56.13,10.244.3.0/24")]


def test_host_gw_routes_each_peer_pod_cidr_via_the_peer_node():
    got = {(str(r.dst), str(r.via), r.onlink) for r in desired_routes("host-gw", NODES[0], NODES)}
    assert got == {("10.244.2.0/24", "192.168.56.12", False), ("10.244.3.0/24", "192.168.56.13", False)}


def test_vxlan_routes_go_via_the_peers_vtep_address_onlink():
    got = {(str(r.dst), str(r.via), r.onlink) for r in desired_routes("vxlan", NODES[1], NODES)}
    assert got == {("10.244.1.0/24", "10.244.1.0", True), ("10.244.3.0/24", "10.244.3.0", True)}


def test_vtep_mac_is_stable_unicast_and_locally_administered():
    mac = vtep_mac(ipaddress.ip_address("192.168.56.12"))
    first = int(mac.split(":")[0], 16)
    assert mac == vtep_mac(ipaddress.ip_address("192.168.56.12")) != vtep_mac(ipaddress.ip_address("192.168.56.13"))
    assert first & 0x02 and not first & 0x01
    assert str(vtep_ip(ipaddress.ip_network("10.244.2.0/24"))) == "10.244.2.0"


@pytest.mark.parametrize("nodes, text", [
    (NODES + [Node.parse("n1,192.168.56.14,10.244.4.0/24")], "twice"),
    (NODES + [Node.parse("n4,192.168.56.14,10.244.0.0/16")], "overlap"),
])
def test_inconsistent_node_lists_are_refused(nodes, text):
    with pytest.raises(NetworkError) as e:
        desired_routes("host-gw", nodes[0], nodes)
    assert text in str(e.value)


def test_bad_node_and_mode():
    with pytest.raises(NetworkError):
        Node.parse("n1,192.168.56.11")
    with pytest.raises(NetworkError):
        desired_routes("bgp", NODES[0], NODES)
