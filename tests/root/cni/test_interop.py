"""Interop: the same two-pod scenario with Debian's reference plugins and with ours.

The executor must run any spec-conformant chain (here: reference bridge + host-local + portmap +
loopback from `containernetworking-plugins` 1.1.1 in /usr/lib/cni, which speak CNI <= 1.0.0), and our
chain must behave like theirs from the pod's point of view.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cni.install import default_conflist, install_conflist, install_plugins
from tests.netsim import SimNet

REFERENCE_DIR = "/usr/lib/cni"


def reference_conflist(subnet: str, data_dir: str) -> dict:
    return {"cniVersion": "1.0.0", "name": "refnet", "plugins": [
        {"type": "bridge", "bridge": "cni0", "isGateway": True, "isDefaultGateway": True, "ipMasq": True,
         "hairpinMode": True,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]], "dataDir": data_dir}},
        {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}]}


@pytest.mark.parametrize("chain", ["reference", "ours"])
def test_two_pods_talk_get_a_host_port_and_leave_nothing_behind(tmp_path, chain):
    assert Path(REFERENCE_DIR, "bridge").exists(), "apt package containernetworking-plugins is missing"
    bin_dir, conf_dir, ipam = tmp_path / "bin", tmp_path / "net.d", tmp_path / "ipam"
    install_plugins(bin_dir)
    if chain == "reference":
        install_conflist(conf_dir, reference_conflist("10.77.1.0/24", str(ipam)), "10-ref.conflist")
        loopback, network = "loopback", "refnet"
    else:
        install_conflist(conf_dir, default_conflist("10.77.1.0/24", data_dir=str(ipam)))
        loopback, network = "nodeagent-loopback", "nodeagent"
    sim = SimNet()
    try:
        sim.add_ns("node")
        sim.sh("node", "ip", "link", "add", "uplink", "type", "veth", "peer", "name", "uplink-peer")
        sim.sh("node", "ip", "link", "set", "uplink-peer", "up")
        sim.sh("node", "ip", "addr", "add", "192.168.77.1/24", "dev", "uplink")
        sim.sh("node", "ip", "link", "set", "uplink", "up")
        pods = {name: str(sim.add_ns(name)) for name in ("pod1", "pod2")}
        agent = f"""
from cni.podnet import PodNetwork, PodNetworkConfig
pn = PodNetwork(PodNetworkConfig(conf_dir={str(conf_dir)!r}, bin_dirs=({str(bin_dir)!r}, {REFERENCE_DIR!r}),
                                 cache_dir={str(tmp_path / "cache")!r}, loopback_type={loopback!r}))
"""
        out = sim.py("node", agent + f"""
a = pn.setup({pods["pod1"]!r}, "c1")
b = pn.setup({pods["pod2"]!r}, "c2", port_mappings=[{{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}}])
pn.check({pods["pod1"]!r}, "c1")
if {chain!r} == "ours":  # reference portmap 1.1.1's CHECK looks for an IPv6 chain it never made
    pn.check({pods["pod2"]!r}, "c2")
report({{"a": str(a.ip.ip), "b": str(b.ip.ip), "version": a.result.cni_version}})
pn.close()
""")
        assert out["version"] == ("1.0.0" if chain == "reference" else "1.1.0")
        # pod to pod: the server sees the client's own address
        assert sim.tcp_source_seen("pod2", "pod1", out["b"], 80) == out["a"]
        # pod to itself over localhost: lo is up
        assert sim.tcp_source_seen("pod1", "pod1", "127.0.0.1", 81, listen="127.0.0.1") == "127.0.0.1"
        # the host port, from the node itself (output chain) to the node's own address
        assert sim.tcp_source_seen("pod2", "node", "192.168.77.1", 8080, server_port=80)
        sim.py("node", agent + f"""
pn.teardown({pods["pod1"]!r}, "c1"); pn.teardown({pods["pod2"]!r}, "c2")
report(None); pn.close()
""")
        left = [n for n in os.listdir(ipam / network) if n[0].isdigit()]
        assert left == []
        links = json.loads(sim.sh("node", "ip", "-j", "link", "show").stdout)
        assert not [link["ifname"] for link in links if link["ifname"].startswith("veth")]
        assert "10.77.1.2" not in sim.sh("node", "nft", "list", "ruleset").stdout
    finally:
        sim.cleanup()
