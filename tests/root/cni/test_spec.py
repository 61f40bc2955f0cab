"""CNI spec behaviour of our plugin chain on a real (simulated) node — through both paths:

  in_process=True   the agent's fast path (our plugin types in-process, netns helper)
  in_process=False  every plugin executed as its own binary, exactly as any CNI runtime would

The node is a network namespace; pods are namespaces made by the test (as a runtime would).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from cni.install import default_conflist, install_conflist, install_plugins
from tests.cnischema import check_result
from tests.netsim import SimNet

PATHS = [pytest.param(True, id="in-process"), pytest.param(False, id="exec")]


class Node:
    def __init__(self, tmp_path, conflist: dict | None = None):
        self.sim = SimNet()
        self.tmp = tmp_path
        self.bin = tmp_path / "bin"
        self.conf = tmp_path / "net.d"
        self.cache = tmp_path / "cache"
        self.ipam = tmp_path / "ipam"
        install_plugins(self.bin)
        install_conflist(self.conf, conflist or default_conflist("10.88.1.0/24", data_dir=str(self.ipam)))
        self.sim.add_ns("node")

    def pod(self, name: str) -> str:
        return str(self.sim.add_ns(name))

    def agent(self, body: str, in_process: bool = True) -> dict:
        """Run `body` in the node with `pn` (a PodNetwork) and `attempt` (errors → dicts) in scope."""
        indented = "\n".join("    " + line for line in body.strip().splitlines())
        return self.sim.py("node", f"""
from cni.podnet import PodNetwork, PodNetworkConfig
from cni.errors import CNIError
def attempt(fn, *a, **kw):
    try:
        return {{"ok": True, "value": json.loads(json.dumps(fn(*a, **kw), default=str))}}
    except CNIError as e:
        return {{"ok": False, "code": e.code, "error": str(e)}}
pn = PodNetwork(PodNetworkConfig(conf_dir={str(self.conf)!r}, bin_dirs=({str(self.bin)!r},),
                                 cache_dir={str(self.cache)!r}, in_process={in_process}))
try:
{indented}
finally:
    pn.close()
""")

    def allocated(self, network: str = "nodeagent") -> list[str]:
        d = self.ipam / network
        return sorted(n for n in os.listdir(d) if n[0].isdigit()) if d.exists() else []

    def node_links(self) -> list[dict]:
        return json.loads(self.sim.sh("node", "ip", "-j", "-d", "link", "show").stdout)

    def pod_addrs(self, pod: str) -> list[str]:
        out = json.loads(self.sim.sh(pod, "ip", "-j", "addr", "show", "dev", "eth0", check=False).stdout or "[]")
        return [f"{a['local']}/{a['prefixlen']}" for i in out for a in i["addr_info"] if a["family"] == "inet"]

    def nft(self) -> str:
        return self.sim.sh("node", "nft", "list", "ruleset").stdout


@pytest.fixture
def node(tmp_path):
    n = Node(tmp_path)
    yield n
    n.sim.cleanup()


@pytest.mark.parametrize("in_process", PATHS)
def test_add_result_matches_the_schema_and_the_pod_is_wired(node, in_process):
    pod = node.pod("pod1")
    out = node.agent(f"""
att = pn.setup({pod!r}, "c1", port_mappings=[{{"hostPort": 8080, "containerPort": 80}}])
report(att.result.to_json())
""", in_process)
    check_result(out, "1.1.0")
    eth0 = out["interfaces"][out["ips"][0]["interface"]]
    assert eth0 == {"name": "eth0", "mac": eth0["mac"], "mtu": 1500, "sandbox": pod}
    # independent evidence, read with iproute2:
    assert node.pod_addrs("pod1") == [out["ips"][0]["address"]]
    routes = json.loads(node.sim.sh("pod1", "ip", "-j", "route").stdout)
    assert {"dst": "default", "gateway": "10.88.1.1"}.items() <= routes[0].items()
    veth = [link for link in node.node_links() if link["ifname"] == out["interfaces"][1]["name"]][0]
    assert veth["master"] == "cni0" and veth["linkinfo"]["info_slave_data"]["hairpin"] is True
    lo = json.loads(node.sim.sh("pod1", "ip", "-j", "link", "show", "lo").stdout)[0]
    assert "UP" in lo["flags"]
    assert "10.88.1.2 comment \"c1/eth0\"" in node.nft()         # ipMasq entry
    assert "tcp . 8080 comment \"c1/eth0\"" in node.nft()        # hostPort entry


@pytest.mark.parametrize("in_process", PATHS)
def test_second_add_for_the_same_attachment_fails_with_a_json_error_and_leaks_no_ip(node, in_process):
    pod = node.pod("pod1")
    out = node.agent(f"""
from cni.cache import RuntimeConf
first = pn.setup({pod!r}, "c1")
net = pn.network()
with pn._operation() as (_, runner):   # the raw executor ADD, on the same path PodNetwork uses
    again = attempt(pn.executor.add, net, RuntimeConf("c1", {pod!r}, "eth0"), runner)
report({{"first": str(first.ip), "again": again}})
""", in_process)
    assert out["again"]["ok"] is False and out["again"]["code"] == 101
    assert "already exists" in out["again"]["error"]
    assert node.allocated() == ["10.88.1.2"]                  # no second address was taken
    assert node.pod_addrs("pod1") == ["10.88.1.2/24"]         # and the first pod still has its own
    # the same through the plugin binary itself: the spec's JSON error object on stdout
    conf = dict(default_conflist("10.88.1.0/24", data_dir=str(node.ipam))["plugins"][0],
                name="nodeagent", cniVersion="1.1.0")
    env = dict(os.environ, CNI_COMMAND="ADD", CNI_CONTAINERID="c1", CNI_NETNS=pod, CNI_IFNAME="eth0",
               CNI_PATH=str(node.bin))
    proc = subprocess.run(["nsenter", f"--net={node.sim.path('node')}", str(node.bin / "nodeagent-bridge")],
                          input=json.dumps(conf), env=env, capture_output=True, text=True, timeout=60)
    err = json.loads(proc.stdout)
    assert proc.returncode != 0 and err["code"] == 101 and err["cniVersion"] == "1.1.0" and err["msg"]
    assert node.allocated() == ["10.88.1.2"]


@pytest.mark.parametrize("in_process", PATHS)
def test_del_twice_succeeds_and_del_after_the_netns_is_gone_frees_the_ip(node, in_process):
    p1, p2 = node.pod("pod1"), node.pod("pod2")
    node.agent(f"""
pn.setup({p1!r}, "c1", port_mappings=[{{"hostPort": 8081, "containerPort": 80}}])
pn.setup({p2!r}, "c2")
report(None)
""", in_process)
    assert node.allocated() == ["10.88.1.2", "10.88.1.3"]
    node.sim.remove_ns("pod2")                                # the runtime lost the pod's netns
    out = node.agent(f"""
report([attempt(pn.teardown, {p1!r}, "c1"), attempt(pn.teardown, {p1!r}, "c1"),
        attempt(pn.teardown, {p2!r}, "c2"), attempt(pn.teardown, {p2!r}, "c2")])
""", in_process)
    assert [o["ok"] for o in out] == [True, True, True, True], out
    assert node.allocated() == []
    assert not [link for link in node.node_links() if link["ifname"].startswith("veth")]
    rules = node.nft()
    for leftover in ("c1/eth0", "c2/eth0", "10.88.1.2", "10.88.1.3", "hp-"):
        assert leftover not in rules, rules


@pytest.mark.parametrize("in_process", PATHS)
def test_an_unsupported_cni_version_is_code_1(tmp_path, in_process):
    conflist = default_conflist("10.88.1.0/24", data_dir=str(tmp_path / "ipam"))
    conflist.pop("cniVersions")
    conflist["cniVersion"] = "0.3.1"                          # ours speak 0.4.0, 1.0.0, 1.1.0
    n = Node(tmp_path, conflist)
    try:
        pod = n.pod("pod1")
        out = n.agent(f"report(attempt(pn.setup, {pod!r}, 'c1'))", in_process)
        assert out["ok"] is False and out["code"] == 1 and "0.3.1" in out["error"]
        assert n.allocated() == []
    finally:
        n.sim.cleanup()


def test_a_plugin_missing_from_cni_path_is_a_clear_error_and_nothing_is_made(node):
    (node.bin / "nodeagent-portmap").unlink()
    pod = node.pod("pod1")
    out = node.agent(f"report(attempt(pn.setup, {pod!r}, 'c1'))")
    assert out["ok"] is False
    assert "nodeagent-portmap" in out["error"] and str(node.bin) in out["error"]
    assert node.allocated() == [] and node.pod_addrs("pod1") == []
    assert not [link for link in node.node_links() if link["ifname"].startswith("veth")]


def test_check_passes_after_add_and_fails_when_the_pod_lost_its_address(node):
    pod = node.pod("pod1")
    out = node.agent(f"""
pn.setup({pod!r}, "c1")
report([attempt(pn.check, {pod!r}, "c1"), attempt(pn.status)])
""")
    assert out[0]["ok"] is True and out[1]["ok"] is True
    node.sim.sh("pod1", "ip", "addr", "flush", "dev", "eth0")
    out = node.agent(f"report(attempt(pn.check, {pod!r}, 'c1'))")
    assert out["ok"] is False and "10.88.1.2/24" in out["error"]


def test_gc_frees_what_belongs_to_attachments_that_are_no_longer_valid(node):
    p1, p2 = node.pod("pod1"), node.pod("pod2")
    node.agent(f"""
pn.setup({p1!r}, "keep", port_mappings=[{{"hostPort": 8082, "containerPort": 80}}])
pn.setup({p2!r}, "stale", port_mappings=[{{"hostPort": 8083, "containerPort": 80}}])
report(None)
""")
    node.agent("pn.gc([('keep', 'eth0')]); report(None)")
    assert node.allocated() == ["10.88.1.2"]
    rules = node.nft()
    assert "keep/eth0" in rules and "stale/eth0" not in rules and "8083" not in rules
    assert node.pod_addrs("pod2") == []                       # GC DELs the stale attachment too


def test_twenty_pods_set_up_and_torn_down_concurrently_by_one_agent(node):
    """The agent calls PodNetwork from worker threads: 20 at once must get 20 distinct, working
    addresses (one netns helper, one IPAM lock, one bridge made once) and leave nothing behind."""
    pods = [node.pod(f"p{i}") for i in range(20)]
    out = node.agent(f"""
from concurrent.futures import ThreadPoolExecutor
pods = {pods!r}
with ThreadPoolExecutor(20) as ex:
    atts = list(ex.map(lambda i: pn.setup(pods[i], f"c{{i}}"), range(20)))
ips = [str(a.ip) for a in atts]
with ThreadPoolExecutor(20) as ex:
    list(ex.map(lambda i: pn.teardown(pods[i], f"c{{i}}"), range(10)))
report(ips)
""")
    assert len(set(out)) == 20 and all(ip.startswith("10.88.1.") for ip in out)
    assert len(node.allocated()) == 10
    for i in range(10, 20):                                   # the ones still up are really configured
        assert node.pod_addrs(f"p{i}") == [out[i]]
    assert len([link for link in node.node_links() if link["ifname"].startswith("veth")]) == 10


def test_host_ports_per_host_ip_and_a_taken_port_is_refused_not_shadowed(node):
    node.sim.sh("node", "ip", "link", "add", "uplink", "type", "veth", "peer", "name", "uplink-peer")
    node.sim.sh("node", "ip", "link", "set", "uplink-peer", "up")
    for addr in ("192.168.77.1/24", "192.168.77.2/24"):
        node.sim.sh("node", "ip", "addr", "add", addr, "dev", "uplink")
    node.sim.sh("node", "ip", "link", "set", "uplink", "up")
    pods = [node.pod(f"p{i}") for i in range(4)]
    out = node.agent(f"""
pods = {pods!r}
m = lambda ip="": [{{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ip}}]
report([attempt(lambda: str(pn.setup(pods[0], "one", port_mappings=m("192.168.77.1")).ip.ip)),
        attempt(lambda: str(pn.setup(pods[1], "two", port_mappings=m("192.168.77.2")).ip.ip)),
        attempt(lambda: str(pn.setup(pods[2], "any", port_mappings=m()).ip.ip)),
        attempt(lambda: str(pn.setup(pods[3], "late", port_mappings=m()).ip.ip))])
""")
    one, two, any_, late = out
    assert one["ok"] and two["ok"] and any_["ok"]
    assert late["ok"] is False and late["code"] == 100
    assert "8080/tcp is already in use" in late["error"] and "any/eth0" in late["error"]
    assert node.pod_addrs("p3") == [] and len(node.allocated()) == 3     # the refused pod holds nothing
    assert node.sim.tcp_source_seen("p0", "node", "192.168.77.1", 8080, server_port=80)
    assert node.sim.tcp_source_seen("p1", "node", "192.168.77.2", 8080, server_port=80)
    assert node.sim.tcp_source_seen("p2", "node", "10.88.1.1", 8080, server_port=80)   # any other address


@pytest.mark.parametrize("in_process", PATHS)
def test_check_finds_a_host_port_without_its_masquerade_mark(node, in_process):
    pod = node.pod("p0")
    node.agent(f"""pn.setup({pod!r}, "c1", port_mappings=[{{"hostPort": 8080, "containerPort": 80}}])
report(None)""", in_process)
    table = json.loads(node.sim.sh("node", "nft", "-j", "list", "table", "ip", "nodeagent_hostport").stdout)
    (mark,) = [o["rule"] for o in table["nftables"]
               if "rule" in o and any("mangle" in e for e in o["rule"]["expr"])]
    node.sim.sh("node", "nft", "delete", "rule", "ip", "nodeagent_hostport", mark["chain"],
                "handle", str(mark["handle"]))
    out = node.agent(f"report(attempt(pn.check, {pod!r}, 'c1'))", in_process)
    assert out["ok"] is False and "no masquerade for hairpin and localhost" in out["error"], out
