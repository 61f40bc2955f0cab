"""host-local IPAM: ranges, the one-file-per-IP store, and the plugin's commands (no root needed)."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import threading

import pytest

from cni.errors import CNIError
from cni.ipam import ranges
from cni.ipam.store import Store
from cni.plugins import hostlocal
from cni.skel import PluginContext, dispatch

CTX = PluginContext(runner=None, netns_access=lambda: None)


def config(tmp_path, subnet="10.244.1.0/24", **ipam):
    return {"cniVersion": "1.1.0", "name": "podnet", "type": "nodeagent-host-local",
            "ipam": {"type": "nodeagent-host-local", "ranges": [[{"subnet": subnet}]],
                     "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(tmp_path), **ipam}}


def call(conf, command, cid, ifname="eth0", **extra_env):
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": "/run/netns/none",
           "CNI_IFNAME": ifname, "CNI_PATH": "/nonexistent", **extra_env}
    rc, out = dispatch(hostlocal.PLUGIN, env, json.dumps(conf).encode(), CTX)
    return rc, (json.loads(out) if out.strip() else None)


def test_defaults_of_a_24_are_gateway_1_and_253_addresses():
    (rs,) = ranges.parse({"name": "n", "ipam": {"subnet": "10.244.1.0/24"}}).range_sets
    assert str(rs[0].gateway) == "10.244.1.1" and rs[0].size() == 253
    assert str(rs[0]) == "10.244.1.1-10.244.1.254"


@pytest.mark.parametrize("ipam, field", [
    ({"ranges": [[{"subnet": "10.0.0.1/24"}]]}, "ranges[0][0].subnet"),   # host bits set
    ({"ranges": [[{"subnet": "10.0.0.0/31"}]]}, "too small"),
    ({"ranges": [[{"subnet": "10.0.0.0/24", "gateway": "10.0.1.1"}]]}, "gateway"),
    ({"ranges": [[{"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.9", "rangeEnd": "10.0.0.3"}]]}, "after"),
    ({}, "ranges"),
])
def test_bad_ranges_are_refused_naming_the_field(ipam, field):
    with pytest.raises(CNIError) as e:
        ranges.parse({"name": "n", "ipam": ipam})
    assert e.value.code == 7 and field in str(e.value)


def test_a_24_gives_253_pods_and_the_254th_gets_a_clear_error(tmp_path):
    conf = config(tmp_path)
    got = set()
    for n in range(253):
        rc, out = call(conf, "ADD", f"pod{n}")
        assert rc == 0, out
        got.add(out["ips"][0]["address"])
    assert len(got) == 253 and "10.244.1.1/24" not in got          # the gateway is never handed out
    rc, out = call(conf, "ADD", "pod253")
    assert rc == 1 and out["code"] == 11
    assert "no IP addresses available" in out["msg"] and "253" in out["details"]
    rc, out = call(conf, "STATUS", "")
    assert rc == 1 and out["code"] == 50                              # STATUS: cannot serve ADD
    assert call(conf, "DEL", "pod7")[0] == 0
    rc, out = call(conf, "ADD", "pod253")                             # a freed address is reusable
    assert rc == 0 and out["ips"][0]["address"] == "10.244.1.9/24"


def test_files_use_the_reference_plugins_format(tmp_path):
    rc, out = call(config(tmp_path), "ADD", "abc123")
    ip = out["ips"][0]["address"].split("/")[0]
    assert (tmp_path / "podnet" / ip).read_bytes() == b"abc123\r\neth0"
    assert (tmp_path / "podnet" / "last_reserved_ip.0").read_text() == ip
    assert out["routes"] == [{"dst": "0.0.0.0/0"}] and "interfaces" not in out   # IPAM: abbreviated


def test_duplicate_add_is_refused_and_keeps_the_first_allocation(tmp_path):
    conf = config(tmp_path)
    first = call(conf, "ADD", "dup")[1]["ips"][0]["address"]
    rc, out = call(conf, "ADD", "dup")
    assert rc == 1 and "duplicate" in out["msg"]
    assert Store(tmp_path, "podnet").find("dup", "eth0") == [ipaddress.ip_interface(first).ip]
    assert call(conf, "ADD", "dup", ifname="eth1")[0] == 0     # another interface is another attachment


def test_del_twice_and_del_of_unknown_succeed_and_free(tmp_path):
    conf = config(tmp_path)
    call(conf, "ADD", "gone")
    assert call(conf, "DEL", "gone") == (0, None)
    assert call(conf, "DEL", "gone") == (0, None)
    assert call(conf, "DEL", "never") == (0, None)
    assert [n for n in os.listdir(tmp_path / "podnet") if n[0].isdigit()] == []
    assert os.listdir(tmp_path / "podnet" / ".attachments") == []      # the index is emptied too


def test_the_attachment_index_is_a_hard_link_and_survives_foreign_releases(tmp_path):
    conf = config(tmp_path)
    ip = call(conf, "ADD", "idx")[1]["ips"][0]["address"].split("/")[0]
    link = tmp_path / "podnet" / ".attachments" / "idx" / "eth0" / ip
    assert os.path.samefile(link, tmp_path / "podnet" / ip)
    (tmp_path / "podnet" / ip).unlink()                   # another plugin released it meanwhile
    with Store(tmp_path, "podnet") as store:
        assert store.find("idx", "eth0") == []            # the stale entry is not believed
    assert call(conf, "ADD", "idx")[0] == 0               # and does not block a new allocation


def test_allocation_is_round_robin_so_a_freed_address_is_reused_last(tmp_path):
    conf = config(tmp_path, subnet="10.9.0.0/29")                    # .2 ... .6
    a = [call(conf, "ADD", f"p{n}")[1]["ips"][0]["address"] for n in range(3)]
    call(conf, "DEL", "p0")
    nxt = call(conf, "ADD", "p3")[1]["ips"][0]["address"]
    assert a == ["10.9.0.2/29", "10.9.0.3/29", "10.9.0.4/29"] and nxt == "10.9.0.5/29"


def test_requested_ip_from_cni_args(tmp_path):
    conf = config(tmp_path)
    rc, out = call(conf, "ADD", "want", CNI_ARGS="IP=10.244.1.77")
    assert out["ips"][0]["address"] == "10.244.1.77/24"
    rc, out = call(conf, "ADD", "want2", CNI_ARGS="IP=10.244.1.77")
    assert rc == 1 and "already allocated" in out["msg"]
    rc, out = call(conf, "ADD", "want3", CNI_ARGS="IP=10.9.9.9")
    assert rc == 1 and "10.9.9.9" in out["msg"] and "range" in out["details"]
    assert Store(tmp_path, "podnet").find("want3", "eth0") == []   # the refused ADD holds nothing


def test_check_and_gc(tmp_path):
    conf = config(tmp_path)
    for cid in ("keep", "stale1", "stale2"):
        call(conf, "ADD", cid)
    assert call(conf, "CHECK", "keep")[0] == 0
    rc, out = call(conf, "CHECK", "nobody")
    assert rc == 1 and "nobody" in out["msg"]
    gc = dict(conf, **{"cni.dev/valid-attachments": [{"containerID": "keep", "ifname": "eth0"}]})
    assert call(gc, "GC", "")[0] == 0
    owners = {e[1] for e in Store(tmp_path, "podnet").entries()}
    assert owners == {"keep"}


def test_twenty_parallel_adds_in_threads_get_distinct_addresses(tmp_path):
    conf = config(tmp_path)
    out: dict[str, str] = {}

    def one(n):
        out[n] = call(conf, "ADD", f"t{n}")[1]["ips"][0]["address"]

    threads = [threading.Thread(target=one, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(out.values())) == 20


def test_twenty_parallel_plugin_processes_get_distinct_addresses(tmp_path):
    """The real thing: 20 separate plugin executables at once, serialized only by the flock."""
    conf = json.dumps(config(tmp_path)).encode()
    procs = []
    for n in range(20):
        env = dict(os.environ, CNI_COMMAND="ADD", CNI_CONTAINERID=f"proc{n}", CNI_NETNS="/run/netns/x",
                   CNI_IFNAME="eth0", CNI_PATH="/nonexistent")
        procs.append(subprocess.Popen([sys.executable, "-c", "from cni.plugins.hostlocal import main; main()"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env))
    outs = [p.communicate(conf, timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    addrs = {json.loads(o)["ips"][0]["address"] for o, _ in outs}
    assert len(addrs) == 20


def test_allocations_survive_a_new_process(tmp_path):
    """State lives on disk only: a fresh interpreter sees earlier allocations and frees them."""
    conf = config(tmp_path)
    first = call(conf, "ADD", "survivor")[1]["ips"][0]["address"]
    code = ("import json,sys; from cni.plugins import hostlocal; from cni.skel import dispatch, PluginContext;"
            "c=json.loads(sys.argv[1]); e={'CNI_COMMAND':'ADD','CNI_CONTAINERID':'other','CNI_NETNS':'/x',"
            "'CNI_IFNAME':'eth0','CNI_PATH':'/x'}; print(dispatch(hostlocal.PLUGIN, e, json.dumps(c).encode(),"
            "PluginContext(None, lambda: None))[1].decode())")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(conf)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["ips"][0]["address"] != first
