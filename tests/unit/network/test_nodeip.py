"""Choosing the node IP explicitly (network/nodeip.py), with the Vagrant NAT trap as the main case."""

from __future__ import annotations

import ipaddress

import pytest

from network.errors import NetworkError
from network.nodeip import choose_node_ip

I = ipaddress.ip_interface
VAGRANT = [("lo", I("127.0.0.1/8")), ("eth0", I("10.0.2.15/24")), ("eth1", I("192.168.56.11/24")),
           ("cni0", I("169.254.3.1/16"))]


def test_two_candidates_and_no_hint_is_an_error_that_lists_them_and_warns_about_nat():
    with pytest.raises(NetworkError) as e:
        choose_node_ip(VAGRANT)
    msg = str(e.value)
    assert "eth0 10.0.2.15/24" in msg and "eth1 192.168.56.11/24" in msg and "NAT" in msg


@pytest.mark.parametrize("kwargs, want, reason", [
    ({"node_ip": "192.168.56.11"}, "192.168.56.11", "--node-ip"),
    ({"interface": "eth1"}, "192.168.56.11", "--node-interface"),
    ({"cluster_network": "192.168.56.0/24"}, "192.168.56.11", "--cluster-network"),
])
def test_each_explicit_way_picks_the_private_network_address(kwargs, want, reason):
    got = choose_node_ip(VAGRANT, **kwargs)
    assert str(got.ip) == want and got.interface == "eth1" and reason in got.reason


def test_the_only_address_is_fine_without_a_hint():
    got = choose_node_ip([("lo", I("127.0.0.1/8")), ("ens3", I("172.16.0.4/20"))])
    assert str(got.ip) == "172.16.0.4" and "only" in got.reason


@pytest.mark.parametrize("kwargs, text", [
    ({"node_ip": "192.168.56.99"}, "not an address of this node"),
    ({"node_ip": "banana"}, "not an IP address"),
    ({"interface": "eth7"}, "no global IPv4 address"),
    ({"cluster_network": "10.10.0.0/16"}, "no address of this node is inside it"),
])
def test_wrong_hints_are_clear_errors(kwargs, text):
    with pytest.raises(NetworkError) as e:
        choose_node_ip(VAGRANT, **kwargs)
    assert text in str(e.value)
