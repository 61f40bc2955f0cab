"""Two simulated nodes (network namespaces on a shared bridge, the shape of a Vagrant cluster),
pod networking across them in host-gw and in VXLAN mode.

Each node runs the real pieces the agent will: cross-node route reconciliation with the node IP
chosen explicitly (network/crossnode.py), and pod setup through PodNetwork's default (in-process)
path. Traffic only ever goes to addresses inside the test's namespaces.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from cni.install import default_conflist, install_conflist, install_plugins
from tests.netsim import Cluster

CLUSTER_CIDR = "10.244.0.0/16"


def pod_cidr(i: int) -> str:
    return f"10.244.{i}.0/24"


class Setup:
    def __init__(self, tmp_path, mode: str):
        self.mode = mode
        self.tmp = tmp_path
        self.c = Cluster(nodes=2)
        self.bin = tmp_path / "bin"
        install_plugins(self.bin)
        self.nodes = ",".join(f"{n}/{self.c.node_ip(n)}/{pod_cidr(i)}" for i, n in enumerate(self.c.nodes, 1))
        for i, n in enumerate(self.c.nodes, 1):
            mtu = 1450 if mode == "vxlan" else None
            install_conflist(tmp_path / n / "net.d",
                             default_conflist(pod_cidr(i), cluster_cidr=CLUSTER_CIDR, mtu=mtu,
                                              data_dir=str(tmp_path / n / "ipam")))

    def reconcile(self, node: str, nodes: str | None = None) -> dict:
        nodes = self.nodes if nodes is None else nodes
        return self.c.py(node, f"""
from network.rtnl import node_session
from network.nodeip import choose_node_ip, host_addresses
from network.crossnode import Node, reconcile
with node_session() as ipr:
    chosen = choose_node_ip(host_addresses(ipr), cluster_network="192.168.56.0/24")
    nodes = [Node.parse(",".join(t.split("/", 2))) for t in {nodes!r}.split(",") if t]  # name/ip/cidr
    me = [n for n in nodes if n.name == {node!r}]
    me = me[0] if me else Node({node!r}, chosen.ip, __import__("ipaddress").ip_network("10.244.99.0/24"))
    changes = reconcile(ipr, {self.mode!r}, me, nodes, underlay=chosen.interface)
report({{"ip": str(chosen.ip), "iface": chosen.interface, "changes": [c.line() for c in changes]}})
""")

    def agent(self, node: str, body: str) -> dict:
        indented = "\n".join("    " + line for line in body.strip().splitlines())
        return self.c.py(node, f"""
from cni.podnet import PodNetwork, PodNetworkConfig
pn = PodNetwork(PodNetworkConfig(conf_dir={str(self.tmp / node / "net.d")!r}, bin_dirs=({str(self.bin)!r},),
                                 cache_dir={str(self.tmp / node / "cache")!r}))
try:
{indented}
finally:
    pn.close()
""")


@pytest.mark.parametrize("mode", ["host-gw", "vxlan"])
def test_two_nodes(tmp_path, mode):
    s = Setup(tmp_path, mode)
    c = s.c
    try:
        # cross-node routes; the node IP is the private-network address, not the shared NAT one
        for n in c.nodes:
            out = s.reconcile(n)
            assert out["ip"] == c.node_ip(n) and out["iface"] == "eth0"
            assert out["changes"]
            assert s.reconcile(n)["changes"] == []                     # idempotent
        routes = json.loads(c.sh("node1", "ip", "-j", "route", "show", "proto", "199").stdout)
        assert [r["dst"] for r in routes] == ["10.244.2.0/24"]
        if mode == "host-gw":
            assert routes[0]["gateway"] == "192.168.56.12" and routes[0]["dev"] == "eth0"
        else:
            assert routes[0]["gateway"] == "10.244.2.0" and routes[0]["dev"] == "nodeagent.1"
            vx = json.loads(c.sh("node1", "ip", "-j", "-d", "link", "show", "nodeagent.1").stdout)[0]
            assert vx["mtu"] == 1450 and vx["linkinfo"]["info_data"]["id"] == 1
            assert vx["linkinfo"]["info_data"]["port"] == 8472
            assert vx["linkinfo"]["info_data"]["local"] == "192.168.56.11"

        pods = {"a": c.add_ns("pod-a"), "b": c.add_ns("pod-b")}
        a = s.agent("node1", f"""
att = pn.setup({str(pods["a"])!r}, "pod-a", port_mappings=[{{"hostPort": 8080, "containerPort": 80}}])
report({{"ip": str(att.ip.ip), "mtu": att.result.interfaces[2].mtu}})
""")
        b = s.agent("node2", f"""
att = pn.setup({str(pods["b"])!r}, "pod-b")
report({{"ip": str(att.ip.ip)}})
""")
        assert a["ip"].startswith("10.244.1.") and b["ip"].startswith("10.244.2.")
        assert a["mtu"] == (1450 if mode == "vxlan" else 1500)

        # pod on node 1 → pod on node 2: the server sees the client pod's own address
        assert c.tcp_source_seen("pod-b", "pod-a", b["ip"], 7000) == a["ip"]
        assert c.tcp_source_seen("pod-a", "pod-b", a["ip"], 7001) == b["ip"]
        # pod → a host outside the cluster: masqueraded to the node's IP
        assert c.tcp_source_seen("outside", "pod-a", "192.168.56.100", 7002) == "192.168.56.11"
        # a hostPort on node 1, reached from a pod on node 2
        assert c.tcp_source_seen("pod-a", "pod-b", "192.168.56.11", 8080, server_port=80)
        # hairpin: pod-a reaches itself through its own hostPort (masqueraded to the bridge address)
        assert c.tcp_source_seen("pod-a", "pod-a", "192.168.56.11", 8080, server_port=80) == "10.244.1.1"

        # teardown: nothing of the pods is left on the nodes
        s.agent("node1", f"pn.teardown({str(pods['a'])!r}, 'pod-a'); report(None)")
        s.agent("node2", f"pn.teardown({str(pods['b'])!r}, 'pod-b'); report(None)")
        for n in c.nodes:
            links = json.loads(c.sh(n, "ip", "-j", "link", "show").stdout)
            assert not [link for link in links if link["ifname"].startswith("veth")]
            ipam = tmp_path / n / "ipam" / "nodeagent"
            assert [f for f in os.listdir(ipam) if f[0].isdigit()] == []
            rules = c.sh(n, "nft", "list", "ruleset").stdout
            assert "pod-a" not in rules and "pod-b" not in rules and "hp-" not in rules
        # a node list without node 2: its route (and VXLAN entries) go away
        out = s.reconcile("node1", nodes=f"node1/{c.node_ip('node1')}/{pod_cidr(1)}")
        assert out["changes"]
        assert json.loads(c.sh("node1", "ip", "-j", "route", "show", "proto", "199").stdout) == []
        if mode == "vxlan":
            assert c.sh("node1", "bridge", "fdb", "show", "dev", "nodeagent.1").stdout.count("dst") == 0
        # taking the nodes out of the cluster: not one rule, route or device of ours is left
        for n in c.nodes:
            c.sh(n, sys.executable, "-m", "nodeagent", "net", "down")
            assert c.sh(n, "nft", "list", "ruleset").stdout.strip() == ""
            links = {link["ifname"] for link in json.loads(c.sh(n, "ip", "-j", "link", "show").stdout)}
            assert links == {"lo", "eth0", "nat0", "nat0-gw"}
            assert c.sh(n, "ip", "route", "show", "proto", "199").stdout.strip() == ""
    finally:
        c.cleanup()
