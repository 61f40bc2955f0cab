"""The `ipam` section of a network config, parsed into range sets.

    "ipam": {"type": "nodeagent-host-local",
             "ranges": [[{"subnet": "10.244.1.0/24"}]],      # or the legacy "subnet": ...
             "routes": [{"dst": "0.0.0.0/0"}],
             "dataDir": "/var/lib/cni/networks"}

A *range* is a subnet with an optional rangeStart/rangeEnd and gateway. Defaults, as host-local:
the gateway is the subnet's first address (.1); the range runs from .1 to the last address before
broadcast (.254 in a /24), and the gateway is skipped when allocating. So a /24 yields .2 ... .254:
253 pods. A *range set* is a list of ranges treated as one pool (one IP per set is allocated);
several sets give one IP each, e.g. an IPv4 and an IPv6 address for a dual-stack pod.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from cni.errors import ConfigError
from cni.result import Route

DEFAULT_DATA_DIR = "/var/lib/cni/networks"


@dataclass(frozen=True)
class Range:
    subnet: ipaddress.IPv4Network | ipaddress.IPv6Network
    start: ipaddress.IPv4Address | ipaddress.IPv6Address
    end: ipaddress.IPv4Address | ipaddress.IPv6Address
    gateway: ipaddress.IPv4Address | ipaddress.IPv6Address | None

    def __contains__(self, ip) -> bool:
        return ip.version == self.start.version and self.start <= ip <= self.end

    def size(self) -> int:
        n = int(self.end) - int(self.start) + 1
        return n - (1 if self.gateway is not None and self.gateway in self else 0)

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"


@dataclass(frozen=True)
class IPAMConfig:
    network: str                      # the network name: the store's directory
    range_sets: tuple[tuple[Range, ...], ...]
    routes: tuple[Route, ...]
    data_dir: str


def _bad(field: str, why: str) -> ConfigError:
    return ConfigError(f"invalid ipam config: {field}", why)


def _addr(value, field: str):
    try:
        return ipaddress.ip_address(value)
    except (TypeError, ValueError):
        raise _bad(field, f"{value!r} is not an IP address") from None


def parse_range(obj: dict, field: str) -> Range:
    if not isinstance(obj, dict) or "subnet" not in obj:
        raise _bad(field, "each range needs a \"subnet\"")
    try:
        subnet = ipaddress.ip_network(obj["subnet"], strict=True)
    except ValueError as e:
        raise _bad(f"{field}.subnet", f"{obj['subnet']!r}: {e}") from None
    if subnet.max_prefixlen - subnet.prefixlen < 2:
        raise _bad(f"{field}.subnet", f"network {subnet} too small to allocate from")
    first = subnet.network_address + 1
    last = subnet.broadcast_address - 1 if subnet.version == 4 else subnet.broadcast_address
    gw = _addr(obj["gateway"], f"{field}.gateway") if obj.get("gateway") else first
    start = _addr(obj["rangeStart"], f"{field}.rangeStart") if obj.get("rangeStart") else first
    end = _addr(obj["rangeEnd"], f"{field}.rangeEnd") if obj.get("rangeEnd") else last
    for name, ip in (("rangeStart", start), ("rangeEnd", end), ("gateway", gw)):
        if ip.version != subnet.version or ip not in subnet:
            raise _bad(f"{field}.{name}", f"{ip} is not in network {subnet}")
    if start > end:
        raise _bad(field, f"rangeStart {start} is after rangeEnd {end}")
    return Range(subnet, start, end, gw)


def parse(conf: dict) -> IPAMConfig:
    """The IPAM config of a request configuration (the whole network config, as delegated)."""
    ipam = conf.get("ipam")
    if not isinstance(ipam, dict):
        raise ConfigError("missing \"ipam\" section in network config")
    sets_raw = ipam.get("ranges")
    if sets_raw is None:
        if not ipam.get("subnet"):
            raise _bad("ranges", "give \"ranges\" (a list of range sets) or \"subnet\"")
        sets_raw = [[{k: ipam[k] for k in ("subnet", "rangeStart", "rangeEnd", "gateway") if k in ipam}]]
    if not isinstance(sets_raw, list) or not sets_raw:
        raise _bad("ranges", "must be a non-empty list of range sets")
    sets = []
    for i, rs in enumerate(sets_raw):
        if not isinstance(rs, list) or not rs:
            raise _bad(f"ranges[{i}]", "must be a non-empty list of ranges")
        rset = tuple(parse_range(r, f"ranges[{i}][{j}]") for j, r in enumerate(rs))
        if len({r.subnet.version for r in rset}) != 1:
            raise _bad(f"ranges[{i}]", "mixes IPv4 and IPv6 ranges")
        for a in range(len(rset)):
            for b in range(a + 1, len(rset)):
                x, y = rset[a], rset[b]
                if x.start <= y.end and y.start <= x.end:
                    raise _bad(f"ranges[{i}]", f"ranges {x} and {y} overlap")
        sets.append(rset)
    routes = []
    for i, r in enumerate(ipam.get("routes") or ()):
        try:
            dst = ipaddress.ip_network(r["dst"], strict=False)
            gw = ipaddress.ip_address(r["gw"]) if r.get("gw") else None
        except (KeyError, TypeError, ValueError):
            raise _bad(f"routes[{i}]", "want {\"dst\": CIDR, optional \"gw\": IP}") from None
        routes.append(Route(dst, gw))
    data_dir = ipam.get("dataDir") or DEFAULT_DATA_DIR
    return IPAMConfig(conf["name"], tuple(sets), tuple(routes), str(data_dir))
