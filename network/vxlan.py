"""VXLAN: an Ethernet between the nodes' pod networks, tunnelled in UDP over the nodes' network.

When nodes are not on one L2 segment (different subnets, a cloud network that drops unknown
source addresses), host-gw routes cannot work: the next hop must be directly reachable. VXLAN wraps
each pod packet in UDP (port 8472, the Linux/flannel default; IANA's is 4789) addressed to the peer
*node*, so only node addresses ever cross the real network. The wrapping costs 50 bytes (outer
Ethernet 14 + IP 20 + UDP 8 + VXLAN 8), hence the pod MTU is the underlay's minus 50: a full-size pod
packet would otherwise not fit and be fragmented or dropped.

Like flannel's vxlan backend, with everything static (no multicast, no learning):
  - device `nodeagent.1` (VNI 1, local = this node's IP, dstport 8472, nolearning), MAC derived from
    the node IP (so every node can compute every peer's MAC — nothing to exchange but the node list);
  - the device gets the node's "VTEP address": the network address of its podCIDR, as a /32;
  - per peer, three entries:
        ip route  10.244.2.0/24 via 10.244.2.0 dev nodeagent.1 onlink   # pods of the peer: via its VTEP
        ip neigh  10.244.2.0 lladdr <peer VTEP MAC> dev nodeagent.1    # that VTEP's MAC: no ARP needed
        bridge fdb <peer VTEP MAC> dev nodeagent.1 dst 192.168.56.12    # that MAC lives behind node 2
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import dataclass

from network.changes import Change
from network.errors import NetworkError
from network.links import LinkInfo, get_link, stable_mac
from network.rtnl import IPRoute, NetlinkError, call

DEVICE = "nodeagent.1"
VNI = 1
PORT = 8472
OVERHEAD = 50
NUD_PERMANENT = 0x80


def vtep_mac(node_ip) -> str:
    return stable_mac(f"vtep/{node_ip}")


def vtep_ip(pod_cidr: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    return pod_cidr.network_address


@dataclass(frozen=True)
class VxlanParams:
    vni: int
    local: str | None
    port: int
    link: int | None
    learning: bool


def _params(ipr: IPRoute, index: int) -> VxlanParams | None:
    msg = ipr.link("get", index=index)[0]
    info = msg.get_attr("IFLA_LINKINFO")
    if info is None or info.get_attr("IFLA_INFO_KIND") != "vxlan":
        return None
    data = info.get_attr("IFLA_INFO_DATA")
    return VxlanParams(data.get_attr("IFLA_VXLAN_ID"), data.get_attr("IFLA_VXLAN_LOCAL"),
                       data.get_attr("IFLA_VXLAN_PORT"), data.get_attr("IFLA_VXLAN_LINK"),
                       bool(data.get_attr("IFLA_VXLAN_LEARNING")))


def ensure_device(ipr: IPRoute, node_ip, underlay: LinkInfo, pod_cidr: ipaddress.IPv4Network,
                  mtu: int | None = None) -> tuple[LinkInfo, list[Change]]:
    """The VXLAN device with exactly our parameters, up, with the node's VTEP address."""
    from network.addrs import ensure_address, list_addresses, delete_address

    mtu = mtu or underlay.mtu - OVERHEAD
    want = VxlanParams(VNI, str(node_ip), PORT, underlay.index, False)
    changes: list[Change] = []
    link = get_link(ipr, DEVICE)
    if link is not None and _params(ipr, link.index) != want:
        call(f"delete {DEVICE}", ipr.link, "del", index=link.index)
        changes.append(Change("delete", f"vxlan device {DEVICE} (wrong parameters)", f"ip link del {DEVICE}"))
        link = None
    if link is None:
        mac = vtep_mac(node_ip)
        call(f"create {DEVICE}", ipr.link, "add", ifname=DEVICE, kind="vxlan", vxlan_id=VNI,
             vxlan_local=str(node_ip), vxlan_port=PORT, vxlan_learning=0, vxlan_link=underlay.index,
             address=mac, mtu=mtu)
        changes.append(Change("create", f"vxlan device {DEVICE} (VNI {VNI}, local {node_ip}, port {PORT})",
                              f"ip link add {DEVICE} address {mac} mtu {mtu} type vxlan id {VNI} local {node_ip} "
                              f"dev {underlay.name} dstport {PORT} nolearning",
                              "pod packets to other nodes travel inside UDP between node addresses"))
        link = get_link(ipr, DEVICE)
        assert link is not None
    if link.mtu != mtu:
        call(f"set mtu of {DEVICE}", ipr.link, "set", index=link.index, mtu=mtu)
        changes.append(Change("set", f"mtu {mtu} on {DEVICE}", f"ip link set {DEVICE} mtu {mtu}",
                              f"{OVERHEAD} bytes of every packet go to the VXLAN wrapping"))
    vtep = ipaddress.ip_interface(f"{vtep_ip(pod_cidr)}/32")
    for _, a in list_addresses(ipr, link, socket.AF_INET):
        if a != vtep:
            changes += delete_address(ipr, link, a)
    changes += ensure_address(ipr, link, vtep)
    if not link.up:
        call(f"set {DEVICE} up", ipr.link, "set", index=link.index, state="up")
        changes.append(Change("set", f"{DEVICE} up", f"ip link set {DEVICE} up"))
    return get_link(ipr, index=link.index) or link, changes


def neighbours(ipr: IPRoute, link: LinkInfo) -> dict[str, str]:
    """Permanent neighbour entries on the device: {ip: mac}."""
    out = {}
    for m in ipr.get_neighbours(family=socket.AF_INET, ifindex=link.index):
        if m["ifindex"] == link.index and m["state"] & NUD_PERMANENT:
            out[m.get_attr("NDA_DST")] = m.get_attr("NDA_LLADDR")
    return out


def fdb_entries(ipr: IPRoute, link: LinkInfo) -> dict[str, str]:
    """Unicast FDB entries of the device that point at a remote node: {mac: node ip}."""
    out = {}
    for m in ipr.fdb("dump", ifindex=link.index):
        if m["ifindex"] != link.index:
            continue
        mac, dst = m.get_attr("NDA_LLADDR"), m.get_attr("NDA_DST")
        if mac and dst and mac != "00:00:00:00:00:00":
            out[mac] = dst
    return out


def ensure_peer(ipr: IPRoute, link: LinkInfo, peer_vtep, peer_mac: str, peer_node_ip) -> list[Change]:
    changes = []
    if neighbours(ipr, link).get(str(peer_vtep)) != peer_mac:
        call(f"neighbour {peer_vtep}", ipr.neigh, "replace", dst=str(peer_vtep), lladdr=peer_mac,
             ifindex=link.index, state=NUD_PERMANENT)
        changes.append(Change("add", f"neighbour {peer_vtep} lladdr {peer_mac} dev {DEVICE}",
                              f"ip neigh replace {peer_vtep} lladdr {peer_mac} dev {DEVICE} nud permanent",
                              "the peer's VTEP MAC is known in advance: no ARP across the tunnel"))
    fdb = fdb_entries(ipr, link)
    if fdb.get(peer_mac) != str(peer_node_ip):
        if peer_mac in fdb:
            _fdb_del(ipr, link, peer_mac, fdb[peer_mac])
        call(f"fdb {peer_mac}", ipr.fdb, "append", ifindex=link.index, lladdr=peer_mac, dst=str(peer_node_ip))
        changes.append(Change("add", f"fdb {peer_mac} dev {DEVICE} dst {peer_node_ip}",
                              f"bridge fdb append {peer_mac} dev {DEVICE} dst {peer_node_ip}",
                              "frames for that MAC are sent in UDP to that node"))
    return changes


def _fdb_del(ipr: IPRoute, link: LinkInfo, mac: str, dst: str) -> None:
    try:
        ipr.fdb("del", ifindex=link.index, lladdr=mac, dst=dst)
    except NetlinkError as e:
        if e.code not in (errno.ENOENT, errno.ENODEV):
            raise NetworkError(f"delete fdb {mac} dst {dst}", str(e), e.code) from e


def remove_stale(ipr: IPRoute, link: LinkInfo, keep_vteps: set[str], keep_macs: set[str]) -> list[Change]:
    changes = []
    for ip, mac in neighbours(ipr, link).items():
        if ip not in keep_vteps:
            try:
                ipr.neigh("del", dst=ip, lladdr=mac, ifindex=link.index)
            except NetlinkError as e:
                if e.code not in (errno.ENOENT, errno.ENODEV):
                    raise NetworkError(f"delete neighbour {ip}", str(e), e.code) from e
            changes.append(Change("delete", f"neighbour {ip} dev {DEVICE}", f"ip neigh del {ip} dev {DEVICE}"))
    for mac, dst in fdb_entries(ipr, link).items():
        if mac not in keep_macs:
            _fdb_del(ipr, link, mac, dst)
            changes.append(Change("delete", f"fdb {mac} dev {DEVICE} dst {dst}",
                                  f"bridge fdb del {mac} dev {DEVICE} dst {dst}"))
    return changes


def delete_device(ipr: IPRoute) -> list[Change]:
    from network.links import delete_link

    return delete_link(ipr, DEVICE)
