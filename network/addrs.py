"""Addresses and routes: giving an interface its IP and telling the kernel where packets go.

    ip addr add 10.244.1.5/24 dev eth0            # the pod's address; the kernel adds the
                                                   #   "10.244.1.0/24 dev eth0" route by itself
    ip route add default via 10.244.1.1           # everything else goes to the node's bridge

Routes that nodeagent adds on the node (to other nodes' pod networks) carry our own routing protocol
number, RTPROT_NODEAGENT, the way routing daemons mark theirs (bird is 12, kernel routes are 2):
`ip route show proto 199` lists exactly ours, and reconciliation can remove stale ones without ever
touching a route somebody else made.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import dataclass

from network.changes import Change
from network.errors import NetworkError
from network.links import LinkInfo, get_link
from network.rtnl import IPRoute, NetlinkError, call

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

RTPROT_KERNEL = 2
RTPROT_BOOT = 3
RTPROT_STATIC = 4
RTPROT_NODEAGENT = 199  # ours; listed by `ip route show proto 199`
RT_TABLE_MAIN = 254
RTNH_F_ONLINK = 4


def _family(x) -> int:
    return socket.AF_INET if x.version == 4 else socket.AF_INET6


def list_addresses(ipr: IPRoute, link: LinkInfo | None = None, family: int = socket.AF_UNSPEC
                   ) -> list[tuple[int, IPInterface]]:
    """(ifindex, address/prefix) pairs, for one link or all."""
    kwargs = {"index": link.index} if link is not None else {}
    out = []
    for m in ipr.get_addr(family=family, **kwargs):
        out.append((m["index"], ipaddress.ip_interface(f"{m.get_attr('IFA_ADDRESS')}/{m['prefixlen']}")))
    return out


def ensure_address(ipr: IPRoute, link: LinkInfo, addr: IPInterface, where: str = "") -> list[Change]:
    """Add `addr` to `link` unless it is there. The add is the look: the kernel answers EEXIST for an
    address the device already has, so the usual case costs one request instead of a dump and a
    request (a dump of the node's addresses grows with every pod's veth)."""
    kwargs = {"index": link.index, "address": str(addr.ip), "prefixlen": addr.network.prefixlen,
              "family": _family(addr)}
    if addr.version == 4 and addr.network.prefixlen < 31:
        kwargs["broadcast"] = str(addr.network.broadcast_address)
    try:
        ipr.addr("add", **kwargs)
    except NetlinkError as e:
        if e.code != errno.EEXIST:  # a concurrent caller added it: fine
            raise NetworkError(f"add address {addr} to {link.name}{where}", str(e), e.code) from e
        return []
    return [Change("add", f"address {addr} to {link.name}{where}", f"ip addr add {addr} dev {link.name}")]


def delete_address(ipr: IPRoute, link: LinkInfo, addr: IPInterface, where: str = "") -> list[Change]:
    if not any(a == addr for _, a in list_addresses(ipr, link, _family(addr))):
        return []
    try:
        ipr.addr("del", index=link.index, address=str(addr.ip), prefixlen=addr.network.prefixlen,
                 family=_family(addr))
    except NetlinkError as e:
        if e.code not in (errno.EADDRNOTAVAIL, errno.ENOENT, errno.ENODEV):
            raise NetworkError(f"remove address {addr} from {link.name}{where}", str(e), e.code) from e
        return []
    return [Change("remove", f"address {addr} from {link.name}{where}", f"ip addr del {addr} dev {link.name}")]


@dataclass(frozen=True)
class RouteInfo:
    dst: IPNetwork
    gateway: IPAddress | None
    oif: int | None
    proto: int
    table: int
    scope: int
    onlink: bool
    mtu: int | None = None

    def describe(self, names: dict[int, str] | None = None) -> str:
        dst = "default" if self.dst.prefixlen == 0 else str(self.dst)
        parts = [dst]
        if self.gateway is not None:
            parts.append(f"via {self.gateway}")
        if self.oif is not None:
            parts.append(f"dev {(names or {}).get(self.oif, self.oif)}")
        if self.onlink:
            parts.append("onlink")
        if self.proto == RTPROT_NODEAGENT:
            parts.append(f"proto {RTPROT_NODEAGENT}")
        elif self.proto == RTPROT_KERNEL:
            parts.append("proto kernel")
        if self.mtu:
            parts.append(f"mtu {self.mtu}")
        return " ".join(parts)


def _route(m) -> RouteInfo:
    family = m["family"]
    zero = "0.0.0.0" if family == socket.AF_INET else "::"
    dst = ipaddress.ip_network(f"{m.get_attr('RTA_DST') or zero}/{m['dst_len']}", strict=False)
    gw = m.get_attr("RTA_GATEWAY")
    metrics = m.get_attr("RTA_METRICS")
    mtu = metrics.get_attr("RTAX_MTU") if metrics is not None else None
    return RouteInfo(dst=dst, gateway=ipaddress.ip_address(gw) if gw else None,
                     oif=m.get_attr("RTA_OIF"), proto=m["proto"],
                     table=m.get_attr("RTA_TABLE") or m["table"], scope=m["scope"],
                     onlink=bool(m["flags"] & RTNH_F_ONLINK), mtu=mtu)


def list_routes(ipr: IPRoute, family: int = socket.AF_INET, table: int = RT_TABLE_MAIN,
                proto: int | None = None) -> list[RouteInfo]:
    """Unicast routes of `table` (type 1: no local/broadcast entries)."""
    out = []
    for m in ipr.get_routes(family=family, table=table):
        if m["type"] != 1:
            continue
        r = _route(m)
        if proto is None or r.proto == proto:
            out.append(r)
    return out


def route_interface(ipr: IPRoute, dst: IPAddress) -> str | None:
    """The name of the interface the node would send a packet for `dst` out of (`ip route get
    DST`), or None when nothing routes it."""
    try:
        msgs = ipr.route("get", dst=str(dst))
    except NetlinkError as e:
        if e.code in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return None
        raise NetworkError(f"ip route get {dst}", str(e), e.code) from e
    for m in msgs:
        oif = m.get_attr("RTA_OIF")
        link = get_link(ipr, index=oif) if oif is not None else None
        if link is not None:
            return link.name
    return None


def ensure_route(ipr: IPRoute, dst: IPNetwork, gateway: IPAddress | None = None,
                 link: LinkInfo | None = None, *, onlink: bool = False,
                 proto: int = RTPROT_BOOT, mtu: int | None = None, where: str = "",
                 why: str = "") -> list[Change]:
    """Make the route to `dst` be exactly this one (replacing a different route to the same dst)."""
    want = RouteInfo(dst=dst, gateway=gateway, oif=link.index if link else None, proto=proto,
                     table=RT_TABLE_MAIN, scope=0 if gateway else 253, onlink=onlink, mtu=mtu)
    kwargs: dict = {"dst": str(dst), "proto": proto, "family": _family(dst)}
    if gateway is not None:
        kwargs["gateway"] = str(gateway)
    if link is not None:
        kwargs["oif"] = link.index
    if onlink:
        kwargs["flags"] = RTNH_F_ONLINK
    if mtu:
        kwargs["metrics"] = {"attrs": [("RTAX_MTU", mtu)]}
    shown = want.describe({link.index: link.name} if link else None)
    # Try "add" first (it fails with EEXIST if *any* route to dst exists): one request when the
    # route is new, which it is on every fresh pod. Only then look at what is there.
    try:
        ipr.route("add", **kwargs)
        return [Change("add", f"route {shown}{where}", f"ip route add {shown}", why)]
    except NetlinkError as e:
        if e.code != errno.EEXIST:
            raise NetworkError(f"add route {shown}{where}", str(e), e.code) from e
    have = [r for r in list_routes(ipr, _family(dst)) if r.dst == dst]
    if any(_same(r, want) for r in have):
        return []
    call(f"replace route {shown}{where}", ipr.route, "replace", **kwargs)
    return [Change("set", f"route {shown}{where}", f"ip route replace {shown}", why)]


def _same(have: RouteInfo, want: RouteInfo) -> bool:
    return (have.gateway == want.gateway and have.onlink == want.onlink
            and (want.oif is None or have.oif == want.oif) and have.proto == want.proto
            and (want.mtu is None or have.mtu == want.mtu))


def delete_route(ipr: IPRoute, route: RouteInfo, names: dict[int, str] | None = None,
                 where: str = "") -> list[Change]:
    kwargs: dict = {"dst": str(route.dst), "family": _family(route.dst), "table": route.table}
    if route.gateway is not None:
        kwargs["gateway"] = str(route.gateway)
    if route.oif is not None:
        kwargs["oif"] = route.oif
    try:
        ipr.route("del", **kwargs)
    except NetlinkError as e:
        if e.code not in (errno.ESRCH, errno.ENOENT, errno.ENODEV):
            raise NetworkError(f"delete route {route.describe(names)}{where}", str(e), e.code) from e
        return []
    shown = route.describe(names)
    return [Change("delete", f"route {shown}{where}", f"ip route del {shown}")]
