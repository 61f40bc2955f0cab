"""Choosing the node's IP: the address other nodes reach it at. Chosen explicitly, never guessed.

The Vagrant NAT trap: a Vagrant VM's first interface (eth0, 10.0.2.15) is VirtualBox/libvirt NAT,
and *every* VM has that same address there; the private network the VMs share is on eth1
(192.168.56.11, .12, ...). The default route points at the NAT, so "the address of the
default-route interface" — what many tools pick — is 10.0.2.15 on every node: routes to other nodes'
pods then point at ourselves, and cross-node traffic silently goes nowhere. So we never use the
default route to decide. In order:

  1. --node-ip ADDRESS        must be an address of this node;
  2. --node-interface IFACE   its (single) global IPv4 address;
  3. --cluster-network CIDR   the address of ours inside the nodes' network (e.g. 192.168.56.0/24);
  4. nothing given            only if the node has exactly one global IPv4 address.
Anything ambiguous is an error that lists the candidates.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from network.errors import NetworkError


@dataclass(frozen=True)
class NodeIP:
    ip: ipaddress.IPv4Address
    interface: str
    prefix: ipaddress.IPv4Interface
    reason: str


def _shown(cands: list[tuple[str, ipaddress.IPv4Interface]]) -> str:
    return ", ".join(f"{i} {a}" for i, a in cands) or "none"


def choose_node_ip(addresses: list[tuple[str, ipaddress.IPv4Interface]], *, node_ip: str | None = None,
                   interface: str | None = None, cluster_network: str | None = None) -> NodeIP:
    """`addresses`: (interface name, address/prefix) of this node, e.g. from `host_addresses()`."""
    cands = [(i, a) for i, a in addresses if a.version == 4 and not a.ip.is_loopback
             and not a.ip.is_link_local]
    if node_ip:
        try:
            want = ipaddress.ip_address(node_ip)
        except ValueError:
            raise NetworkError(f"--node-ip {node_ip!r}", "not an IP address") from None
        for i, a in cands:
            if a.ip == want:
                return NodeIP(a.ip, i, a, "given with --node-ip")
        raise NetworkError(f"--node-ip {node_ip}", f"not an address of this node (addresses: {_shown(cands)})")
    if interface:
        mine = [(i, a) for i, a in cands if i == interface]
        if len(mine) == 1:
            return NodeIP(mine[0][1].ip, interface, mine[0][1], f"the address of --node-interface {interface}")
        if not mine:
            raise NetworkError(f"--node-interface {interface}", f"has no global IPv4 address "
                                                                f"(addresses: {_shown(cands)})")
        raise NetworkError(f"--node-interface {interface}", f"has several addresses ({_shown(mine)}); "
                                                            "choose one with --node-ip")
    if cluster_network:
        try:
            net = ipaddress.ip_network(cluster_network, strict=False)
        except ValueError:
            raise NetworkError(f"--cluster-network {cluster_network!r}", "not a network (CIDR)") from None
        inside = [(i, a) for i, a in cands if a.ip in net]
        if len(inside) == 1:
            i, a = inside[0]
            return NodeIP(a.ip, i, a, f"the address inside --cluster-network {net}")
        if not inside:
            raise NetworkError(f"--cluster-network {net}", f"no address of this node is inside it "
                                                          f"(addresses: {_shown(cands)})")
        raise NetworkError(f"--cluster-network {net}", f"several addresses inside it ({_shown(inside)}); "
                                                      "choose one with --node-ip")
    if len(cands) == 1:
        i, a = cands[0]
        return NodeIP(a.ip, i, a, "the only global IPv4 address of this node")
    raise NetworkError("choose the node IP", f"this node has {len(cands)} candidate addresses "
                       f"({_shown(cands)}); say which one with --node-ip, --node-interface or "
                       "--cluster-network (with Vagrant, eth0's 10.0.2.15 is the NAT address every VM "
                       "shares: never the one)" if cands else "this node has no global IPv4 address")


def host_addresses(ipr) -> list[tuple[str, ipaddress.IPv4Interface]]:
    """(interface name, address/prefix) of every IPv4 address in this network namespace."""
    import socket

    names = {m["index"]: m.get_attr("IFLA_IFNAME") for m in ipr.get_links()}
    out = []
    for m in ipr.get_addr(family=socket.AF_INET):
        out.append((names.get(m["index"], str(m["index"])),
                    ipaddress.ip_interface(f"{m.get_attr('IFA_ADDRESS')}/{m['prefixlen']}")))
    return out
