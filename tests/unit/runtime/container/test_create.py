"""What create refuses before it makes anything."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from runtime.container.create import CreateOptions, check_spec, create, device_rules
from runtime.errors import ContainerError, SpecError
from runtime.spec.defaults import DEFAULT_DEVICE_RULES, default_spec
from runtime.spec.model import DeviceRule, Namespace


def test_a_threaded_caller_is_refused_before_anything_is_made(tmp_path):
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        with pytest.raises(ContainerError, match="single-threaded"):
            create("c1", default_spec(("true",), str(tmp_path)), CreateOptions(root=str(tmp_path / "state")))
    finally:
        stop.set()
        t.join()
    assert not (tmp_path / "state").exists()


def test_no_mount_namespace_is_allowed_as_the_spec_says():
    # The container then shares its creator's (root tier: test_oci_conformance.py).
    spec = default_spec(("true",), "/r")
    no_mnt = dataclasses.replace(spec, linux=dataclasses.replace(
        spec.linux, namespaces=tuple(n for n in spec.linux.namespaces if n.type != "mount")))
    check_spec(no_mnt)


def test_joining_a_namespace_that_does_not_exist_is_refused():
    spec = default_spec(("true",), "/r")
    bad = dataclasses.replace(spec, linux=dataclasses.replace(
        spec.linux, namespaces=tuple(Namespace(n.type, "/nonexistent/ns") if n.type == "network" else n
                                     for n in spec.linux.namespaces)))
    with pytest.raises(SpecError, match="/nonexistent/ns does not exist"):
        check_spec(bad)


def test_device_rules_always_start_from_deny_all_and_end_with_the_basics():
    spec_rules = (DeviceRule(True, "c", 10, 200, "rwm"),)
    res = dataclasses.replace(default_spec(("true",), "/r").linux.resources, devices=spec_rules)
    rules = device_rules(res).devices
    assert rules[0] == DeviceRule(False, "a", None, None, "rwm")
    assert rules[1] == spec_rules[0]
    assert rules[2:] == DEFAULT_DEVICE_RULES[1:]


def test_a_spec_made_from_our_defaults_gets_each_device_rule_once():
    res = default_spec(("true",), "/r").linux.resources       # already framed by the defaults
    assert device_rules(res).devices == DEFAULT_DEVICE_RULES
    extra = DeviceRule(True, "c", 10, 200, "rwm")
    framed = dataclasses.replace(res, devices=res.devices[:1] + (extra,) + res.devices[1:])
    assert device_rules(framed).devices == DEFAULT_DEVICE_RULES[:1] + (extra,) + DEFAULT_DEVICE_RULES[1:]
