"""A strict check of a CNI ADD result against SPEC.md section 5 (used by the tests)."""

from __future__ import annotations

import ipaddress
import re

MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def check_result(obj: dict, version: str) -> None:
    """Raise AssertionError naming the first field that breaks the spec's result schema."""
    allowed = {"cniVersion", "interfaces", "ips", "routes", "dns"}
    assert set(obj) <= allowed, f"unknown keys {set(obj) - allowed}"
    assert obj["cniVersion"] == version, f"cniVersion {obj['cniVersion']} != {version}"
    ifaces = obj.get("interfaces", [])
    if_keys = {"name", "mac", "sandbox"} | ({"mtu", "socketPath", "pciID"} if version >= "1.1.0" else set())
    for n, i in enumerate(ifaces):
        assert set(i) <= if_keys, f"interfaces[{n}] has {set(i) - if_keys}"
        assert isinstance(i["name"], str) and i["name"], f"interfaces[{n}].name"
        if "mac" in i:
            assert MAC.match(i["mac"]), f"interfaces[{n}].mac {i['mac']!r}"
        if "mtu" in i:
            assert isinstance(i["mtu"], int) and i["mtu"] > 0, f"interfaces[{n}].mtu"
        if "sandbox" in i:
            assert isinstance(i["sandbox"], str), f"interfaces[{n}].sandbox"
    ip_keys = {"address", "gateway", "interface"} | ({"version"} if version < "1.0.0" else set())
    for n, ip in enumerate(obj.get("ips", [])):
        assert set(ip) <= ip_keys, f"ips[{n}] has {set(ip) - ip_keys}"
        addr = ipaddress.ip_interface(ip["address"])
        assert "/" in ip["address"], f"ips[{n}].address must be CIDR"
        if "gateway" in ip:
            assert ipaddress.ip_address(ip["gateway"]) in addr.network, f"ips[{n}].gateway off-subnet"
        if "interface" in ip:
            assert isinstance(ip["interface"], int) and 0 <= ip["interface"] < len(ifaces), \
                f"ips[{n}].interface {ip['interface']} is not an index into interfaces"
        if version < "1.0.0":
            assert ip["version"] == str(addr.version)
    route_keys = {"dst", "gw"} | ({"mtu", "advmss", "priority", "table", "scope"} if version >= "1.1.0" else set())
    for n, r in enumerate(obj.get("routes", [])):
        assert set(r) <= route_keys, f"routes[{n}] has {set(r) - route_keys}"
        ipaddress.ip_network(r["dst"], strict=False)
        if "gw" in r:
            ipaddress.ip_address(r["gw"])
    dns = obj.get("dns", {})
    assert set(dns) <= {"nameservers", "domain", "search", "options"}, f"dns has {set(dns)}"
