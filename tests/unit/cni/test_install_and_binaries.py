"""`nodeagent cni install` output, and our plugin executables answering the protocol themselves."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from cni.config import find_network
from cni.install import default_conflist, install_conflist, install_plugins
from cni.invoke import BUILTIN_PLUGINS


def test_install_writes_executable_launchers_and_a_valid_default_conflist(tmp_path):
    paths = install_plugins(tmp_path / "bin")
    assert sorted(p.name for p in paths) == sorted(BUILTIN_PLUGINS)
    assert not {"bridge", "host-local", "loopback", "portmap"} & {p.name for p in paths}   # no shadowing
    for p in paths:
        assert os.access(p, os.X_OK) and p.read_text().startswith("#!")
    install_conflist(tmp_path / "net.d", default_conflist("10.244.3.0/24", cluster_cidr="10.244.0.0/16", mtu=1450))
    net = find_network(tmp_path / "net.d")
    assert net.name == "nodeagent" and net.cni_version == "1.1.0"
    assert [p.type for p in net.plugins] == ["nodeagent-bridge", "nodeagent-portmap"]
    bridge = net.plugins[0].raw
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.3.0/24"}]] and bridge["mtu"] == 1450
    assert bridge["nonMasqueradeCIDRs"] == ["10.244.0.0/16"]
    assert net.plugins[1].capabilities == {"portMappings": True}
    with pytest.raises(ValueError):
        default_conflist("10.244.3.1/24")                        # host bits: refused


@pytest.fixture(scope="module")
def bin_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("bin")
    install_plugins(d)
    return d


@pytest.mark.parametrize("plugin", sorted(BUILTIN_PLUGINS))
def test_each_plugin_binary_answers_version(bin_dir, plugin):
    env = dict(os.environ, CNI_COMMAND="VERSION")
    out = subprocess.run([str(bin_dir / plugin)], input=b'{"cniVersion": "1.0.0"}', env=env,
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0", "1.1.0"]}


def test_a_binary_without_cni_command_says_what_it_is(bin_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    out = subprocess.run([str(bin_dir / "nodeagent-bridge")], env=env, capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, timeout=60)
    assert out.returncode == 0 and "nodeagent-bridge" in out.stderr and "0.4.0, 1.0.0, 1.1.0" in out.stderr


def test_a_binary_with_missing_variables_prints_the_json_error(bin_dir):
    env = dict({k: v for k, v in os.environ.items() if not k.startswith("CNI_")}, CNI_COMMAND="ADD")
    out = subprocess.run([str(bin_dir / "nodeagent-host-local")], input=b"{}", env=env,
                         capture_output=True, timeout=60)
    err = json.loads(out.stdout)
    assert out.returncode == 1 and err["code"] == 4 and "CNI_CONTAINERID" in err["msg"]
