"""Interop: the same scenarios with Debian's reference plugins and with ours.

The executor must run any spec-conformant chain (here: reference bridge + host-local + portmap +
loopback from `containernetworking-plugins` 1.1.1 in /usr/lib/cni, which speak CNI <= 1.0.0), and our
chain must behave like theirs from the pod's point of view — including every way a hostPort is
reached, and which client address the pod then sees.
"""

from __future__ import annotations

import json
import os
import sys
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


def install_chain(tmp_path, chain: str) -> tuple[str, str]:
    """Install `chain`'s conflist (pod subnet 10.77.1.0/24, gateway 10.77.1.1); return the Python
    that makes `pn`, a PodNetwork running it, and the network's name. "ours-exec" runs our plugins
    as executables, as any CNI runtime would, instead of in-process."""
    assert Path(REFERENCE_DIR, "bridge").exists(), "apt package containernetworking-plugins is missing"
    bin_dir, conf_dir, ipam = tmp_path / "bin", tmp_path / "net.d", tmp_path / "ipam"
    install_plugins(bin_dir)
    if chain == "reference":
        install_conflist(conf_dir, reference_conflist("10.77.1.0/24", str(ipam)), "10-ref.conflist")
        loopback, network = "loopback", "refnet"
    else:
        install_conflist(conf_dir, default_conflist("10.77.1.0/24", data_dir=str(ipam)))
        loopback, network = "nodeagent-loopback", "nodeagent"
    agent = f"""
from cni.podnet import PodNetwork, PodNetworkConfig
pn = PodNetwork(PodNetworkConfig(conf_dir={str(conf_dir)!r}, bin_dirs=({str(bin_dir)!r}, {REFERENCE_DIR!r}),
                                 cache_dir={str(tmp_path / "cache")!r}, loopback_type={loopback!r},
                                 in_process={chain != "ours-exec"}))
"""
    return agent, network


@pytest.mark.parametrize("chain", ["reference", "ours"])
def test_two_pods_talk_get_a_host_port_and_leave_nothing_behind(tmp_path, chain):
    agent, network = install_chain(tmp_path, chain)
    ipam = tmp_path / "ipam"
    sim = SimNet()
    try:
        sim.add_ns("node")
        sim.sh("node", "ip", "link", "add", "uplink", "type", "veth", "peer", "name", "uplink-peer")
        sim.sh("node", "ip", "link", "set", "uplink-peer", "up")
        sim.sh("node", "ip", "addr", "add", "192.168.77.1/24", "dev", "uplink")
        sim.sh("node", "ip", "link", "set", "uplink", "up")
        pods = {name: str(sim.add_ns(name)) for name in ("pod1", "pod2")}
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


NODE_IP, REMOTE_IP, GATEWAY = "192.168.77.1", "192.168.77.2", "10.77.1.1"


@pytest.fixture
def hostport_node(request, tmp_path):
    """A node (192.168.77.1 on eth0) wired to another machine, `remote` (192.168.77.2), whose pods
    use the chain `request.param`; two pod namespaces, `server` and `client`, not yet set up."""
    agent, _ = install_chain(tmp_path, request.param)
    sim = SimNet()
    try:
        sim.add_ns("node")
        sim.add_ns("remote")
        sim.wire("node", "eth0", "remote", "eth0")
        sim.sh("node", "ip", "addr", "add", f"{NODE_IP}/24", "dev", "eth0")
        sim.sh("remote", "ip", "addr", "add", f"{REMOTE_IP}/24", "dev", "eth0")
        pods = {name: str(sim.add_ns(name)) for name in ("server", "client")}
        yield sim, agent, pods, request.param
    finally:
        sim.cleanup()


def _setup_pods(sim, agent, pods) -> dict:
    """ADD both pods: `server` maps hostPort 8080 to its port 80, `client` maps none."""
    return sim.py("node", agent + f"""
s = pn.setup({pods["server"]!r}, "srv", port_mappings=[{{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}}])
c = pn.setup({pods["client"]!r}, "cli")
report({{"server": str(s.ip.ip), "client": str(c.ip.ip)}})
pn.close()
""")


@pytest.mark.parametrize("hostport_node", ["reference", "ours", "ours-exec"], indirect=True)
@pytest.mark.parametrize("bridge_nf", ["0", "1"], ids=["no-br-netfilter", "br-netfilter"])
def test_a_host_port_is_reached_every_way_and_del_removes_it(hostport_node, bridge_nf):
    """(a) the node on 127.0.0.1, (b) the node on its own address, (c) another pod and the pod
    itself through the node's address, (d) another machine: all reach the pod, and the pod sees the
    same client address with either chain. (a) needs route_localnet and a masquerade of 127/8; (c)
    needs the masquerade of the pod subnet, which is why it also works without br_netfilter's
    bridge-nf-call-iptables (with it, conntrack would also catch the bridged reply)."""
    sim, agent, pods, chain = hostport_node
    sim.sh("node", "sysctl", "-qw", f"net.bridge.bridge-nf-call-iptables={bridge_nf}")
    ips = _setup_pods(sim, agent, pods)
    assert ips == {"server": "10.77.1.2", "client": "10.77.1.3"}

    def seen(client: str, address: str) -> str:
        return sim.tcp_source_seen("server", client, address, 8080, server_port=80)

    assert seen("node", "127.0.0.1") == GATEWAY          # (a) masqueraded to the bridge's address
    assert seen("node", NODE_IP) == NODE_IP              # (b) the node's own address, untouched
    assert seen("client", NODE_IP) == GATEWAY            # (c) another pod on the bridge: masqueraded
    assert seen("server", NODE_IP) == GATEWAY            # (c) the pod itself (hairpin)
    assert seen("remote", NODE_IP) == REMOTE_IP          # (d) another machine keeps its address
    route_localnet = sim.sh("node", "sysctl", "-n", "net.ipv4.conf.cni0.route_localnet").stdout.strip()
    assert route_localnet == "1"

    sim.py("node", agent + f"""
pn.teardown({pods["server"]!r}, "srv"); pn.teardown({pods["client"]!r}, "cli")
report(None); pn.close()
""")
    rules = sim.sh("node", "nft", "list", "ruleset").stdout
    for leftover in ("10.77.1.2", "8080", "srv", "hp-"):            # (the mark rules went with them)
        assert leftover not in rules, rules
    # the sysctl stays as the reference plugin leaves it (other pods on the bridge may need it)
    assert sim.sh("node", "sysctl", "-n", "net.ipv4.conf.cni0.route_localnet").stdout.strip() == "1"
    assert sim.tcp_source_seen("node", "remote", NODE_IP, 8080) == REMOTE_IP   # the port is the node's again
    if chain != "reference":   # `nodeagent down` / `net down`: the tables and the bridge (its sysctls with it)
        sim.py("node", "from cni.podnet import teardown_node; teardown_node(); report(None)")
        tables = sim.sh("node", "nft", "list", "tables").stdout
        assert "nodeagent" not in tables, tables
        assert sim.sh("node", "ip", "link", "show", "cni0", check=False).returncode != 0


def send_udp(sim: SimNet, ns: str, address: str, port: int, text: str = "probe",
             source_port: int = 0) -> None:
    sim.sh(ns, sys.executable, "-c", "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
           f"s.bind(('0.0.0.0', {source_port})); s.sendto({text.encode()!r}, ({address!r}, {port}))")


def udp_delivered(sim: SimNet, server_ns: str, client_ns: str, address: str, port: int, listen: str,
                  server_port: int | None = None, source_port: int = 0) -> bool:
    """Whether one datagram from `client_ns` to address:port reaches a socket bound to
    listen:server_port (default: port) in `server_ns` (one way only: enough to show reach)."""
    server = sim.spawn(server_ns, f"""
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(({listen!r}, {server_port or port}))
        s.settimeout(3)
        print("ready", flush=True)
        try:
            print(s.recvfrom(64)[0].decode(), flush=True)
        except TimeoutError:
            print("nothing", flush=True)
    """)
    assert server.stdout.readline().strip() == "ready", server.stderr.read()
    send_udp(sim, client_ns, address, port, source_port=source_port)
    got = server.stdout.readline().strip()
    server.wait(timeout=10)
    return got == "probe"


@pytest.mark.parametrize("hostport_node, opened", [("reference", True), ("ours", False)],
                         indirect=["hostport_node"])
def test_route_localnet_on_the_bridge_does_not_open_the_nodes_loopback_to_pods(hostport_node, opened):
    """route_localnet=1 on cni0 (needed for 127.0.0.1:hostPort) also makes the node accept packets
    for 127.0.0.1 *from* the bridge: a pod that routes 127.0.0.1 to its gateway (a raw socket does as
    well) reaches a service the node binds to loopback only — CVE-2020-8558. The reference portmap
    plugin leaves that open; ours drops such packets in its input chain, as kube-proxy does."""
    sim, agent, pods, _ = hostport_node
    _setup_pods(sim, agent, pods)
    # the attacker pod: 127.0.0.1 is no longer local but behind the gateway
    for cmd in (["sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=1"],
                ["ip", "route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local"],
                ["ip", "route", "del", "local", "127.0.0.1", "dev", "lo", "table", "local"],
                ["ip", "route", "add", "127.0.0.1/32", "via", GATEWAY, "dev", "eth0"]):
        sim.sh("client", *cmd)
    assert udp_delivered(sim, "node", "client", "127.0.0.1", 9999, listen="127.0.0.1") is opened
    # the node's own loopback traffic is untouched
    assert udp_delivered(sim, "node", "node", "127.0.0.1", 9998, listen="127.0.0.1")


@pytest.mark.parametrize("hostport_node", ["reference", "ours"], indirect=True)
def test_a_udp_flow_that_began_before_the_host_port_is_redirected_once_it_exists(hostport_node):
    """conntrack decides NAT on a flow's first packet: a UDP sender that was already sending to the
    port (to the node itself, nobody listening) keeps that decision while it keeps sending — unless
    ADD deletes the flow's entry, which both plugins do."""
    sim, agent, pods, _ = hostport_node

    def flows() -> list[str]:
        return sim.py("node", """
from pyroute2 import Conntrack
with Conntrack() as ct:
    report([str(e) for e in ct.dump_entries() if "dport=5353" in str(e)])
""")

    sim.py("node", agent + f"""
pn.setup({pods["client"]!r}, "cli"); report(None); pn.close()
""")   # a pod network is there already (its nat rules turn conntrack on in the node)
    send_udp(sim, "remote", NODE_IP, 5353, source_port=40053)       # nobody maps 5353 yet
    assert flows(), "the early datagram left no conntrack entry: the test would prove nothing"
    sim.py("node", agent + f"""
pn.setup({pods["server"]!r}, "srv", port_mappings=[{{"hostPort": 5353, "containerPort": 53, "protocol": "udp"}}])
report(None); pn.close()
""")
    # the same flow (same source port) now reaches the pod
    assert udp_delivered(sim, "server", "remote", NODE_IP, 5353, listen="0.0.0.0", server_port=53,
                         source_port=40053)
