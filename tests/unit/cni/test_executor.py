"""The executor (cni/executor.py) against fake plugin executables that record what they were given."""

from __future__ import annotations

import base64
import json
import os
import sys
import textwrap

import pytest

from cni.cache import RuntimeConf
from cni.config import parse_conflist
from cni.errors import CNIError, PluginFailed, PluginNotFound
from cni.executor import CNIExecutor
from cni.invoke import ExecRunner, InProcessRunner
from cni.skel import PluginContext

FAKE = textwrap.dedent('''\
    #!{python}
    import json, os, sys
    VERSIONS = {versions!r}
    cmd = os.environ.get("CNI_COMMAND")
    stdin = sys.stdin.read()
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(json.dumps({{"type": {name!r}, "cmd": cmd, "stdin": json.loads(stdin) if stdin.strip() else None,
                               "env": {{k: v for k, v in os.environ.items() if k.startswith("CNI_")}}}}) + "\\n")
    if cmd == "VERSION":
        print(json.dumps({{"cniVersion": "1.1.0", "supportedVersions": VERSIONS}})); sys.exit(0)
    conf = json.loads(stdin)
    fail = conf.get("fail", {{}}).get(cmd)
    if fail:
        print(json.dumps({{"code": fail[0], "msg": fail[1]}})); sys.exit(1)
    if conf.get("crash") == cmd:
        sys.stderr.write("segfault, sort of\\n"); sys.exit(2)
    if cmd == "ADD":
        prev = conf.get("prevResult") or {{"cniVersion": conf["cniVersion"], "interfaces": [], "ips": []}}
        prev["interfaces"].append({{"name": {name!r} + "-if", "sandbox": os.environ["CNI_NETNS"]}})
        if not prev["ips"]:
            prev["ips"].append({{"address": "10.1.0.5/24", "gateway": "10.1.0.1", "interface": 0}})
        print(json.dumps(prev))
''')


@pytest.fixture
def env(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("FAKE_LOG", str(log))

    def plugin(name, versions=("0.4.0", "1.0.0", "1.1.0")):
        p = bin_dir / name
        p.write_text(FAKE.format(python=sys.executable, name=name, versions=list(versions)))
        p.chmod(0o755)

    def calls():
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    ex = CNIExecutor([str(tmp_path / "empty"), str(bin_dir)], tmp_path / "cache")
    return ex, plugin, calls, tmp_path


def net(*plugins, **extra):
    return parse_conflist({"cniVersion": "1.0.0", "name": "testnet",
                           "plugins": [dict(type=p) if isinstance(p, str) else p for p in plugins], **extra})


RT = RuntimeConf("ctr1", "/run/netns/ctr1", "eth0", (("K8S_POD_NAME", "web"),),
                 {"portMappings": [{"hostPort": 80, "containerPort": 8080, "protocol": "tcp"}]})


def test_add_chains_prev_result_and_caches_in_libcni_format(env):
    ex, plugin, calls, tmp = env
    plugin("first")
    plugin("second")
    n = net("first", {"type": "second", "capabilities": {"portMappings": True}})
    result = ex.add(n, RT)
    assert [i.name for i in result.interfaces] == ["first-if", "second-if"]
    c = calls()
    assert [x["cmd"] for x in c] == ["ADD", "ADD"]
    assert "prevResult" not in c[0]["stdin"] and "runtimeConfig" not in c[0]["stdin"]
    assert c[1]["stdin"]["prevResult"]["interfaces"] == [{"name": "first-if", "sandbox": "/run/netns/ctr1"}]
    assert c[1]["stdin"]["runtimeConfig"] == {"portMappings": RT.capability_args["portMappings"]}
    assert c[0]["env"] == {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "ctr1", "CNI_NETNS": "/run/netns/ctr1",
                           "CNI_IFNAME": "eth0", "CNI_ARGS": "K8S_POD_NAME=web",
                           "CNI_PATH": f"{tmp}/empty:{tmp}/bin"}
    cached = json.loads((tmp / "cache" / "results" / "testnet-ctr1-eth0").read_text())
    assert cached["kind"] == "cniCacheV1" and cached["containerId"] == "ctr1" and cached["ifName"] == "eth0"
    assert json.loads(base64.b64decode(cached["config"]))["name"] == "testnet"
    assert cached["result"]["interfaces"][1]["name"] == "second-if"
    assert cached["cniArgs"] == [["K8S_POD_NAME", "web"]]


def test_del_runs_in_reverse_with_the_cached_result_and_twice_is_fine(env):
    ex, plugin, calls, tmp = env
    plugin("first")
    plugin("second")
    n = net("first", "second")
    ex.add(n, RT)
    ex.delete(n, RT)
    dels = [x for x in calls() if x["cmd"] == "DEL"]
    assert [x["type"] for x in dels] == ["second", "first"]
    assert all(len(x["stdin"]["prevResult"]["interfaces"]) == 2 for x in dels)
    assert not (tmp / "cache" / "results" / "testnet-ctr1-eth0").exists()
    ex.delete(n, RT)                                       # again: no cache, still called, still fine
    again = [x for x in calls() if x["cmd"] == "DEL"][2:]
    assert [x["type"] for x in again] == ["second", "first"] and "prevResult" not in again[0]["stdin"]


def test_a_missing_plugin_fails_before_any_plugin_runs(env):
    ex, plugin, calls, tmp = env
    plugin("first")
    with pytest.raises(PluginNotFound) as e:
        ex.add(net("first", "nosuchplugin"), RT)
    assert "nosuchplugin" in str(e.value) and f"{tmp}/bin" in str(e.value)
    assert calls() == []


def test_plugin_errors_name_the_plugin_and_keep_the_code(env):
    ex, plugin, calls, tmp = env
    plugin("first")
    plugin("second")
    with pytest.raises(PluginFailed) as e:
        ex.add(net("first", {"type": "second", "fail": {"ADD": [7, "bad config"]}}), RT)
    assert e.value.code == 7 and e.value.plugin == "second" and "bad config" in str(e.value)
    assert ex.cached_result(net("first"), RT) is None       # a failed ADD caches nothing
    with pytest.raises(PluginFailed) as e:
        ex.add(net({"type": "first", "crash": "ADD"}), RT)
    assert "segfault, sort of" in str(e.value)


def test_check_uses_the_cache_and_honours_disable_check(env):
    ex, plugin, calls, tmp = env
    plugin("first")
    n = net("first")
    with pytest.raises(CNIError) as e:
        ex.check(n, RT)
    assert "only valid after ADD" in str(e.value)
    ex.add(n, RT)
    ex.check(n, RT)
    check = [x for x in calls() if x["cmd"] == "CHECK"]
    assert check[0]["stdin"]["prevResult"]["ips"][0]["address"] == "10.1.0.5/24"
    ex.check(net("first", disableCheck=True), RT)            # must not call the plugin
    assert len([x for x in calls() if x["cmd"] == "CHECK"]) == 1


def test_gc_deletes_stale_cached_attachments_and_sends_valid_ones(env):
    ex, plugin, calls, tmp = env
    plugin("first")
    n = parse_conflist({"cniVersion": "1.1.0", "name": "testnet", "plugins": [{"type": "first"}]})
    for cid in ("live", "stale"):
        ex.add(n, RuntimeConf(cid, f"/run/netns/{cid}"))
    ex.gc(n, [("live", "eth0")])
    c = calls()
    dels = [x for x in c if x["cmd"] == "DEL"]
    assert [x["env"]["CNI_CONTAINERID"] for x in dels] == ["stale"]
    gc = [x for x in c if x["cmd"] == "GC"][0]
    assert gc["stdin"]["cni.dev/valid-attachments"] == [{"containerID": "live", "ifname": "eth0"}]
    assert gc["env"]["CNI_CONTAINERID"] == "" and "prevResult" not in gc["stdin"]
    assert [a.container_id for a in ex.cached_attachments("testnet")] == ["live"]


def test_version_negotiation_picks_what_every_plugin_speaks(env):
    ex, plugin, calls, tmp = env
    plugin("modern")
    plugin("reference", versions=("0.3.0", "0.3.1", "0.4.0", "1.0.0"))     # like Debian's 1.1.1
    n = parse_conflist({"cniVersion": "1.1.0", "cniVersions": ["1.0.0", "1.1.0"], "name": "testnet",
                        "plugins": [{"type": "modern"}, {"type": "reference"}]})
    result = ex.add(n, RT)
    assert result.cni_version == "1.0.0"
    assert {x["stdin"]["cniVersion"] for x in calls() if x["cmd"] == "ADD"} == {"1.0.0"}
    only_new = parse_conflist({"cniVersion": "1.1.0", "cniVersions": ["1.1.0"], "name": "x",
                               "plugins": [{"type": "reference"}]})
    with pytest.raises(CNIError) as e:
        ex.add(only_new, RT)
    assert e.value.code == 1 and "reference" in e.value.details


def test_invalid_attachment_parameters_are_refused(env):
    ex, plugin, calls, tmp = env
    plugin("first")
    with pytest.raises(CNIError):
        ex.add(net("first"), RuntimeConf("bad id", "/run/netns/x"))
    with pytest.raises(CNIError):
        ex.add(net("first"), RuntimeConf("ok", "/run/netns/x", "eth0/1"))
    assert calls() == []


def test_in_process_runner_gives_the_same_answers_as_exec(tmp_path, monkeypatch):
    """Our IPAM plugin through the fast path and through its executable: same results, same errors."""
    from cni.install import install_plugins

    bin_dir = tmp_path / "bin"
    install_plugins(bin_dir)
    conf = {"cniVersion": "1.1.0", "name": "ipamnet", "plugins": [{
        "type": "nodeagent-host-local", "ipam": {"type": "nodeagent-host-local",
                                                 "ranges": [[{"subnet": "10.7.0.0/29"}]],
                                                 "dataDir": str(tmp_path / "ipam")}}]}
    n = parse_conflist(conf)
    inproc = InProcessRunner(lambda r: PluginContext(runner=r, netns_access=lambda: None))
    ex = CNIExecutor([str(bin_dir)], tmp_path / "cache")
    a = ex.add(n, RuntimeConf("a", "/run/netns/a"), ExecRunner())
    b = ex.add(n, RuntimeConf("b", "/run/netns/b"), inproc)
    assert [str(i.address) for i in (*a.ips, *b.ips)] == ["10.7.0.2/29", "10.7.0.3/29"]
    errors = []
    for runner in (ExecRunner(), inproc):
        with pytest.raises(PluginFailed) as e:
            ex.add(n, RuntimeConf("a", "/run/netns/a"), runner)    # duplicate
        errors.append((e.value.code, e.value.msg))
    assert errors[0] == errors[1]
    for cid in ("a", "b"):
        ex.delete(n, RuntimeConf(cid, "/run/netns/x"), inproc)
    assert sorted(os.listdir(tmp_path / "ipam" / "ipamnet")) == [".attachments", "last_reserved_ip.0", "lock"]
    assert os.listdir(tmp_path / "ipam" / "ipamnet" / ".attachments") == []


def test_only_an_executable_that_is_really_ours_runs_in_process(tmp_path, monkeypatch):
    """A foreign binary that happens to be called nodeagent-host-local is executed, not bypassed."""
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("FAKE_LOG", str(log))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    impostor = bin_dir / "nodeagent-host-local"
    impostor.write_text(FAKE.format(python=sys.executable, name="impostor", versions=["1.0.0", "1.1.0"]))
    impostor.chmod(0o755)
    n = parse_conflist({"cniVersion": "1.1.0", "name": "x", "plugins": [{"type": "nodeagent-host-local"}]})
    inproc = InProcessRunner(lambda r: PluginContext(runner=r, netns_access=lambda: None))
    result = CNIExecutor([str(bin_dir)], tmp_path / "cache").add(n, RT, inproc)
    assert [i.name for i in result.interfaces] == ["impostor-if"]
    assert json.loads(log.read_text().splitlines()[-1])["cmd"] == "ADD"
