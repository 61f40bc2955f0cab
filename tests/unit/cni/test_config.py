"""Network configuration files: discovery order, version selection, the derived plugin request."""

from __future__ import annotations

import json

import pytest

from cni.config import build_request, find_network, parse_conflist
from cni.errors import CNIError


def _write(d, name, obj):
    (d / name).write_text(json.dumps(obj) if not isinstance(obj, str) else obj)


def _list(name, **extra):
    return {"cniVersion": "1.0.0", "name": name, "plugins": [{"type": "bridge"}], **extra}


def _single(name):
    return {"cniVersion": "1.0.0", "name": name, "type": "bridge"}


def test_default_network_is_the_first_conflist_even_if_a_conf_sorts_earlier(tmp_path):
    _write(tmp_path, "00-old.conf", _single("old"))
    _write(tmp_path, "20-b.conflist", _list("b"))
    _write(tmp_path, "10-a.conflist", _list("a"))
    _write(tmp_path, "05-notes.txt", "not a config")
    assert find_network(tmp_path).name == "a"


def test_conf_files_are_used_when_there_is_no_conflist_and_are_up_converted(tmp_path):
    _write(tmp_path, "50-z.json", _single("z"))
    _write(tmp_path, "40-y.conf", _single("y"))
    net = find_network(tmp_path)
    assert net.name == "y" and [p.type for p in net.plugins] == ["bridge"]


def test_lookup_by_name_prefers_a_conflist_over_a_conf_of_the_same_name(tmp_path):
    _write(tmp_path, "00-x.conf", _single("x"))
    _write(tmp_path, "99-x.conflist", _list("x", plugins=[{"type": "ours"}]))
    assert find_network(tmp_path, "x").plugins[0].type == "ours"
    with pytest.raises(CNIError) as e:
        find_network(tmp_path, "nope")
    assert "nope" in str(e.value) and "99-x.conflist" in str(e.value)


def test_empty_or_missing_conf_dir_is_a_clear_error(tmp_path):
    with pytest.raises(CNIError) as e:
        find_network(tmp_path / "missing")
    assert "no network configurations found" in str(e.value)


def test_a_broken_file_is_reported_by_name_not_skipped(tmp_path):
    _write(tmp_path, "10-bad.conflist", "{not json")
    _write(tmp_path, "20-good.conflist", _list("good"))
    with pytest.raises(CNIError) as e:
        find_network(tmp_path)
    assert "10-bad.conflist" in str(e.value)


def test_cni_versions_select_the_highest_we_implement():
    net = parse_conflist(_list("n", cniVersion="0.4.0", cniVersions=["1.0.0", "1.1.0", "9.9.9"]))
    assert net.cni_version == "1.1.0"
    assert parse_conflist(_list("n", cniVersion="0.3.1")).cni_version == "0.3.1"


@pytest.mark.parametrize("bad, field", [
    ({"cniVersion": "1.0.0", "plugins": [{"type": "bridge"}]}, "name"),
    ({"cniVersion": "1.0.0", "name": "-x", "plugins": [{"type": "bridge"}]}, "network name"),
    ({"cniVersion": "1.0.0", "name": "x", "plugins": []}, "plugins"),
    ({"cniVersion": "1.0.0", "name": "x", "plugins": [{"bridge": "cni0"}]}, "plugins[0]"),
    ({"cniVersion": "1.0.0", "name": "x", "plugins": [{"type": "../bin/sh"}]}, "plugins[0].type"),
    ({"cniVersion": "1.0.0", "name": "x", "disableCheck": "maybe", "plugins": [{"type": "b"}]}, "disableCheck"),
])
def test_invalid_lists_name_the_field(bad, field):
    with pytest.raises(CNIError) as e:
        parse_conflist(bad, "/etc/cni/net.d/10-x.conflist")
    assert field in str(e.value) and "10-x.conflist" in str(e.value)


def test_request_config_inserts_name_version_prevresult_and_only_declared_capabilities():
    net = parse_conflist({"cniVersion": "1.1.0", "name": "dbnet", "plugins": [
        {"type": "bridge", "bridge": "cni0", "ipam": {"type": "host-local"}},
        {"type": "portmap", "capabilities": {"portMappings": True, "bandwidth": False}, "snat": True}]})
    caps = {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
            "bandwidth": {"ingressRate": 1}, "mac": "00:11:22:33:44:55"}
    first = build_request(net, net.plugins[0], capability_args=caps)
    assert first == {"type": "bridge", "bridge": "cni0", "ipam": {"type": "host-local"},
                     "name": "dbnet", "cniVersion": "1.1.0"}      # no prevResult, no runtimeConfig
    prev = {"cniVersion": "1.1.0", "ips": []}
    second = build_request(net, net.plugins[1], prev_result=prev, capability_args=caps)
    assert second["prevResult"] == prev and second["snat"] is True
    assert second["runtimeConfig"] == {"portMappings": caps["portMappings"]}
    assert "capabilities" not in second
    gc = build_request(net, net.plugins[1], capability_args=caps, attachment=False)
    assert "runtimeConfig" not in gc
