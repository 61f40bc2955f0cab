"""Spec versions and the ADD result's JSON in each version (SPEC.md section 5)."""

from __future__ import annotations

import ipaddress

import pytest

from cni import version
from cni.errors import CNIError
from cni.result import DNS, Interface, IPConfig, Result, Route


def test_versions_compare_numerically_not_as_text():
    assert version.at_least("1.1.0", "0.4.0")
    assert version.at_least("0.10.0", "0.4.0")          # text comparison would say no
    assert not version.at_least("0.3.1", "0.4.0")
    assert version.highest(["0.3.1", "1.0.0", "0.4.0", "2.0.0"]) == "1.0.0"  # 2.0.0: beyond us


def test_plugin_version_check_is_exact_and_names_both_sides():
    version.check_supported("1.0.0")
    with pytest.raises(CNIError) as e:
        version.check_supported("0.3.1")
    assert e.value.code == 1
    assert "0.3.1" in e.value.details and "1.1.0" in e.value.details


def _result(v: str) -> Result:
    return Result(v, (Interface("cni0", "aa:bb:cc:dd:ee:01"), Interface("veth1", "aa:bb:cc:dd:ee:02", mtu=1450),
                      Interface("eth0", "aa:bb:cc:dd:ee:03", "/run/netns/p1", mtu=1450)),
                  (IPConfig(ipaddress.ip_interface("10.244.1.5/24"), ipaddress.ip_address("10.244.1.1"), 2),),
                  (Route(ipaddress.ip_network("0.0.0.0/0"), None, mtu=1400),),
                  DNS(("10.96.0.10",), search=("svc.cluster.local",)))


def test_result_json_shape_per_version():
    r = _result("1.1.0")
    new = r.to_json("1.1.0")
    assert new["ips"] == [{"interface": 2, "address": "10.244.1.5/24", "gateway": "10.244.1.1"}]
    assert new["interfaces"][2] == {"name": "eth0", "mac": "aa:bb:cc:dd:ee:03", "mtu": 1450,
                                    "sandbox": "/run/netns/p1"}
    assert new["routes"] == [{"dst": "0.0.0.0/0", "mtu": 1400}]
    v100 = r.to_json("1.0.0")   # mtu fields are 1.1.0 additions
    assert "mtu" not in v100["interfaces"][2] and v100["routes"] == [{"dst": "0.0.0.0/0"}]
    old = r.to_json("0.4.0")    # before 1.0.0 every IP names its family
    assert old["ips"][0]["version"] == "4" and old["cniVersion"] == "0.4.0"


@pytest.mark.parametrize("v", ["0.4.0", "1.0.0", "1.1.0"])
def test_result_round_trips(v):
    r = _result(v)
    back = Result.from_json(r.to_json(v), "1.1.0")
    assert back.cni_version == v
    assert back.ips == r.ips and back.interfaces[2].sandbox == "/run/netns/p1"
    assert back.sandbox_ips() == list(r.ips)


def test_bad_result_fields_are_named():
    with pytest.raises(CNIError) as e:
        Result.from_json({"cniVersion": "1.0.0", "ips": [{"address": "10.1.1.300/24"}]}, "1.0.0")
    assert e.value.code == 6 and "ips[0].address" in str(e.value)
    with pytest.raises(CNIError) as e:
        Result.from_json({"cniVersion": "1.0.0", "routes": [{"dst": "0.0.0.0/0", "gw": "x"}]}, "1.0.0")
    assert "routes[0].gw" in str(e.value)
