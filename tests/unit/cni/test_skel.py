"""The plugin-side protocol (cni/skel.py): environment, stdin, version checks, result and errors."""

from __future__ import annotations

import ipaddress
import json

import pytest

from cni.errors import CNIError
from cni.result import IPConfig, Result
from cni.skel import Plugin, PluginContext, dispatch

CALLS: list[tuple[str, str]] = []


def _add(args, ctx):
    CALLS.append(("ADD", args.container_id))
    if args.container_id == "boom":
        raise RuntimeError("kaboom")
    if args.container_id == "cnierr":
        raise CNIError(11, "busy", "try later")
    return Result(args.cni_version, ips=(IPConfig(ipaddress.ip_interface("10.0.0.2/24"),
                                                  ipaddress.ip_address("10.0.0.1")),))


def _other(name):
    def handler(args, ctx):
        CALLS.append((name, args.container_id))
    return handler


PLUGIN = Plugin("fake", "a fake plugin", _add, _other("DEL"), _other("CHECK"), _other("GC"), _other("STATUS"))
CTX = PluginContext(runner=None, netns_access=lambda: None)
ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/nowhere-x",
       "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin"}


def conf(v="1.1.0", **extra):
    return json.dumps({"cniVersion": v, "name": "net1", "type": "fake", **extra}).encode()


def run(env_changes=None, stdin=None):
    env = dict(ENV, **(env_changes or {}))
    env = {k: v for k, v in env.items() if v is not None}
    rc, out = dispatch(PLUGIN, env, conf() if stdin is None else stdin, CTX)
    return rc, json.loads(out) if out.strip() else None


def test_version_lists_what_we_support_and_echoes_the_asked_version():
    rc, out = run({"CNI_COMMAND": "VERSION", "CNI_CONTAINERID": None, "CNI_NETNS": None},
                  stdin=b'{"cniVersion": "1.0.0"}')
    assert rc == 0 and out == {"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0", "1.1.0"]}


def test_add_prints_the_result_in_the_config_version():
    rc, out = run(stdin=conf("0.4.0"))
    assert rc == 0
    assert out["cniVersion"] == "0.4.0" and out["ips"][0]["version"] == "4"
    rc, out = run(stdin=conf("1.1.0"))
    assert out["cniVersion"] == "1.1.0" and "version" not in out["ips"][0]


def test_missing_variables_are_all_named_in_one_error_code_4():
    rc, out = run({"CNI_NETNS": None, "CNI_IFNAME": None})
    assert rc == 1 and out["code"] == 4
    assert "CNI_NETNS" in out["msg"] and "CNI_IFNAME" in out["msg"]


def test_del_does_not_need_a_netns_and_gc_needs_no_container():
    CALLS.clear()
    assert run({"CNI_COMMAND": "DEL", "CNI_NETNS": None})[0] == 0
    assert run({"CNI_COMMAND": "GC", "CNI_CONTAINERID": None, "CNI_NETNS": None, "CNI_IFNAME": None})[0] == 0
    assert CALLS == [("DEL", "c1"), ("GC", "")]


@pytest.mark.parametrize("stdin, code", [(b"{nope", 6), (b'{"cniVersion": "1.0.0"}', 7),
                                         (conf("0.3.1"), 1), (conf("2.0.0"), 1)])
def test_bad_stdin_gets_the_spec_code(stdin, code):
    rc, out = run(stdin=stdin)
    assert rc == 1 and out["code"] == code


def test_check_needs_0_4_0_and_gc_status_need_1_1_0():
    assert run({"CNI_COMMAND": "CHECK"}, conf("1.0.0"))[0] == 0
    rc, out = run({"CNI_COMMAND": "GC", "CNI_CONTAINERID": None}, conf("1.0.0"))
    assert rc == 1 and out["code"] == 1 and "GC" in out["msg"]
    rc, out = run({"CNI_COMMAND": "STATUS"}, conf("1.0.0"))
    assert out["code"] == 1


def test_invalid_container_id_and_ifname_are_refused():
    assert run({"CNI_CONTAINERID": "bad/id"})[1]["code"] == 4
    assert run({"CNI_IFNAME": "a-very-long-ifname0"})[1]["code"] == 4
    assert run({"CNI_IFNAME": "eth:0"})[1]["code"] == 4


def test_unknown_command_is_code_4():
    rc, out = run({"CNI_COMMAND": "FROB"})
    assert out["code"] == 4 and "FROB" in out["msg"]


def test_errors_of_the_handler_become_json_errors():
    rc, out = run({"CNI_CONTAINERID": "cnierr"})
    assert rc == 1 and out == {"cniVersion": "1.1.0", "code": 11, "msg": "busy", "details": "try later"}
    rc, out = run({"CNI_CONTAINERID": "boom"})
    assert rc == 1 and out["code"] == 999 and "kaboom" in out["msg"]
