"""Routes to the other nodes' pods: host-gw or VXLAN, reconciled from the node list.

Every node owns a podCIDR (10.244.1.0/24, 10.244.2.0/24, ...) and its own pods live on its bridge.
For a pod on node 1 to reach a pod on node 2, node 1 needs a route for node 2's podCIDR:

  host-gw  `ip route 10.244.2.0/24 via 192.168.56.12` — the next hop is node 2 itself. The
           simplest and fastest (no encapsulation), but node 2 must be directly reachable on the
           same L2 network: the kernel refuses a gateway it cannot reach without another router.
  vxlan    the route goes through a VXLAN device instead (network/vxlan.py), so only the nodes
           need to reach each other, over any routed network; costs 50 bytes of MTU.

`reconcile()` is idempotent and total: given the full node list it adds what is missing, fixes
what differs and removes routes (and VXLAN neighbour/FDB entries) for nodes no longer listed. Our
routes carry protocol 199 (network/addrs.py), so it never touches a route it did not make, and
switching modes removes the other mode's routes.

The node's own IP must be chosen explicitly (network/nodeip.py): with Vagrant, the default-route
interface has the NAT address every VM shares.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from network.addrs import RTPROT_NODEAGENT, delete_route, ensure_route, list_routes
from network.changes import Change
from network.errors import NetworkError
from network.links import LinkInfo, get_link
from network.rtnl import IPRoute

MODES = ("host-gw", "vxlan")


@dataclass(frozen=True)
class Node:
    name: str
    ip: ipaddress.IPv4Address
    pod_cidr: ipaddress.IPv4Network

    @classmethod
    def parse(cls, text: str) -> "Node":
        """"name,ip,podCIDR" (the form of the CLI's --node option)."""
        try:
            name, ip, cidr = (p.strip() for p in text.split(","))
            return cls(name, ipaddress.IPv4Address(ip), ipaddress.IPv4Network(cidr))
        except ValueError as e:
            raise NetworkError(f"node {text!r}", f"want NAME,IP,PODCIDR ({e})") from None


@dataclass(frozen=True)
class DesiredRoute:
    dst: ipaddress.IPv4Network
    via: ipaddress.IPv4Address
    onlink: bool     # vxlan: the VTEP address is "on the link" of the vxlan device


def desired_routes(mode: str, me: Node, nodes: list[Node]) -> list[DesiredRoute]:
    """What the node's routing table should hold for the other nodes (a pure function)."""
    if mode not in MODES:
        raise NetworkError(f"mode {mode!r}", f"want one of {', '.join(MODES)}")
    peers = [n for n in nodes if n.name != me.name]
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise NetworkError("node list", "a node name appears twice")
    cidrs = [n.pod_cidr for n in nodes]
    for a in range(len(cidrs)):
        for b in range(a + 1, len(cidrs)):
            if cidrs[a].overlaps(cidrs[b]):
                raise NetworkError("node list", f"podCIDRs {cidrs[a]} and {cidrs[b]} overlap")
    if mode == "host-gw":
        return [DesiredRoute(p.pod_cidr, p.ip, False) for p in peers]
    from network.vxlan import vtep_ip

    return [DesiredRoute(p.pod_cidr, vtep_ip(p.pod_cidr), True) for p in peers]


def reconcile(ipr: IPRoute, mode: str, me: Node, nodes: list[Node], underlay: str | None = None,
              mtu: int | None = None) -> list[Change]:
    """Make this node's routes to the other nodes' pods match `nodes` (see module doc)."""
    from network import vxlan

    from network.sysctl import ensure_sysctl

    want = desired_routes(mode, me, nodes)
    peers = [n for n in nodes if n.name != me.name]
    changes: list[Change] = ensure_sysctl("net.ipv4.ip_forward", "1",
                                          "the node forwards packets between its pods and the other nodes")
    dev: LinkInfo | None = None
    if mode == "vxlan":
        if not underlay:
            raise NetworkError("vxlan", "needs the node interface the tunnel runs over")
        under = get_link(ipr, underlay)
        if under is None:
            raise NetworkError(f"vxlan underlay {underlay}", "no such interface")
        dev, made = vxlan.ensure_device(ipr, me.ip, under, me.pod_cidr, mtu)
        changes += made
        for p in peers:
            changes += vxlan.ensure_peer(ipr, dev, vxlan.vtep_ip(p.pod_cidr), vxlan.vtep_mac(p.ip), p.ip)
        changes += vxlan.remove_stale(ipr, dev, {str(vxlan.vtep_ip(p.pod_cidr)) for p in peers},
                                      {vxlan.vtep_mac(p.ip) for p in peers})
    names = {dev.index: dev.name} if dev else {}
    wanted = {r.dst: r for r in want}
    for have in list_routes(ipr, socket.AF_INET, proto=RTPROT_NODEAGENT):
        w = wanted.get(have.dst)
        wrong_device = dev is not None and have.oif != dev.index  # e.g. a host-gw route, now vxlan
        if w is None or have.gateway != w.via or wrong_device:
            changes += delete_route(ipr, have, names)
    owner = {p.pod_cidr: p for p in peers}
    for r in want:
        peer = owner[r.dst]
        try:
            changes += ensure_route(ipr, r.dst, r.via, dev, onlink=r.onlink, proto=RTPROT_NODEAGENT,
                                    why=f"the pods of node {peer.name} ({peer.ip}) live in {r.dst}"
                                        + (" (through the VXLAN tunnel)" if mode == "vxlan" else ""))
        except NetworkError as e:
            if mode == "host-gw" and e.errno == 101:  # ENETUNREACH: not on our L2 network
                raise NetworkError(f"host-gw route {r.dst} via {r.via}",
                                   f"{r.via} is not directly reachable from this node; host-gw needs "
                                   "all nodes on one L2 network (use --mode vxlan)", e.errno) from e
            raise
    if mode == "host-gw" and get_link(ipr, vxlan.DEVICE) is not None:
        changes += vxlan.delete_device(ipr)
    return changes


def teardown(ipr: IPRoute) -> list[Change]:
    """Remove every route we made to other nodes' pods, and the VXLAN device."""
    from network import vxlan

    changes: list[Change] = []
    for have in list_routes(ipr, socket.AF_INET, proto=RTPROT_NODEAGENT):
        changes += delete_route(ipr, have)
    if get_link(ipr, vxlan.DEVICE) is not None:
        changes += vxlan.delete_device(ipr)
    return changes
