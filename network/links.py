"""Network devices: bridges, veth pairs, and plugging one into the other.

The pod's wire, in three steps (what `ip` would do):

    ip link add cni0 type bridge                              # once per node: the pods' switch
    ip link add vethXXXX type veth peer name eth0 netns POD   # a cable with one end in the pod
    ip link set vethXXXX master cni0 up                       # plug the node's end into the switch

A veth pair is two devices joined back to back: a frame sent into one comes out of the other. Made
with its peer *directly inside* the pod's namespace (IFLA_NET_NS_FD on the peer), the pod end never
exists in the node's namespace, so no other process can see or grab it half-configured, and if a
device called eth0 is already in the pod the kernel refuses the whole pair (EEXIST) — exactly the
"interface already exists" error the CNI spec demands, with nothing left to undo.

The bridge gets a fixed MAC address. A Linux bridge otherwise borrows the lowest MAC of its ports,
so the pods' gateway MAC would change whenever a pod comes or goes and every pod's ARP entry for the
gateway would silently go stale.

Every function here is idempotent and returns the Changes it made (network/changes.py).
"""

from __future__ import annotations

import errno
import hashlib
from dataclasses import dataclass

from network.changes import Change
from network.errors import NetworkError
from network.rtnl import IPRoute, NetlinkError, call

IFF_UP = 0x1
IFNAMSIZ = 15


@dataclass(frozen=True)
class LinkInfo:
    """What a student would read in `ip -d link show DEV`."""

    index: int
    name: str
    kind: str          # "bridge", "veth", "vxlan", "" for a plain device
    mac: str
    mtu: int
    up: bool
    master: int | None  # ifindex of the bridge it is plugged into
    peer_index: int | None  # for a veth: the peer's ifindex (in the peer's namespace)
    peer_netnsid: int | None  # for a veth whose peer is in another namespace: that namespace's id


def _info(msg) -> LinkInfo:
    linkinfo = msg.get_attr("IFLA_LINKINFO")
    kind = (linkinfo.get_attr("IFLA_INFO_KIND") if linkinfo is not None else None) or ""
    return LinkInfo(
        index=msg["index"],
        name=msg.get_attr("IFLA_IFNAME"),
        kind=kind,
        mac=msg.get_attr("IFLA_ADDRESS") or "",
        mtu=msg.get_attr("IFLA_MTU") or 0,
        up=bool(msg["flags"] & IFF_UP),
        master=msg.get_attr("IFLA_MASTER"),
        peer_index=msg.get_attr("IFLA_LINK") if kind == "veth" else None,
        peer_netnsid=msg.get_attr("IFLA_LINK_NETNSID"),
    )


def get_link(ipr: IPRoute, name: str | None = None, index: int | None = None) -> LinkInfo | None:
    """The device called `name` (or with `index`), or None if there is none."""
    # RTM_GETLINK for one device: the kernel looks it up. (get_links(ifname=...) would dump every
    # device and filter in Python — with a hundred pods on the node, that is the slow part of ADD.)
    try:
        msgs = ipr.link("get", index=index) if index is not None else ipr.link("get", ifname=name)
    except NetlinkError as e:
        if e.code in (errno.ENODEV, errno.ENOENT):
            return None
        raise
    return _info(msgs[0]) if msgs else None


def list_links(ipr: IPRoute) -> list[LinkInfo]:
    return [_info(m) for m in ipr.get_links()]


def stable_mac(seed: str) -> str:
    """A locally administered unicast MAC derived from `seed` (same seed, same MAC, on every node)."""
    h = hashlib.sha256(seed.encode()).digest()
    first = (h[0] & 0xFC) | 0x02  # locally administered, unicast
    return ":".join(f"{b:02x}" for b in (first, *h[1:6]))


def host_veth_name(container_id: str, ifname: str) -> str:
    """The node-side name of a pod's veth: derived from the attachment, so DEL can find it by name."""
    return "veth" + hashlib.sha256(f"{container_id}/{ifname}".encode()).hexdigest()[:8]


def ensure_bridge(ipr: IPRoute, name: str, mtu: int | None = None) -> tuple[LinkInfo, list[Change]]:
    """Make sure bridge `name` exists, is up, and has `mtu` (if given)."""
    if len(name) > IFNAMSIZ:
        raise NetworkError(f"bridge name {name!r}", f"longer than {IFNAMSIZ} characters")
    changes: list[Change] = []
    link = get_link(ipr, name)
    if link is None:
        spec = {"ifname": name, "kind": "bridge", "address": stable_mac("bridge/" + name)}
        if mtu:
            spec["mtu"] = mtu
        try:
            ipr.link("add", **spec)
            changes.append(Change("create", f"bridge {name}",
                                  f"ip link add {name} address {spec['address']} type bridge"
                                  + (f" && ip link set {name} mtu {mtu}" if mtu else ""),
                                  "the node's virtual switch: every pod's veth plugs into it"))
        except NetlinkError as e:
            if e.code != errno.EEXIST:  # a concurrent ADD made it first: fine
                raise NetworkError(f"create bridge {name}", str(e), e.code) from e
        link = get_link(ipr, name)
        assert link is not None
    if link.kind != "bridge":
        raise NetworkError(f"bridge {name}", f"a device with that name exists but is a {link.kind or 'plain'} device")
    if mtu and link.mtu != mtu:
        call(f"set mtu {mtu} on {name}", ipr.link, "set", index=link.index, mtu=mtu)
        changes.append(Change("set", f"mtu {mtu} on bridge {name}", f"ip link set {name} mtu {mtu}"))
    if not link.up:
        call(f"set {name} up", ipr.link, "set", index=link.index, state="up")
        changes.append(Change("set", f"bridge {name} up", f"ip link set {name} up"))
    if changes:  # read back what we changed; an untouched bridge is as we just read it
        link = get_link(ipr, index=link.index) or link
    return link, changes


def create_veth_into(ipr: IPRoute, host_name: str, peer_name: str, netns_fd: int, netns_path: str,
                     mtu: int | None = None, host_mac: str | None = None, peer_mac: str | None = None
                     ) -> list[Change]:
    """Create veth pair host_name <-> peer_name with the peer made inside the namespace `netns_fd`.

    Not idempotent on purpose: if either name is taken the kernel says EEXIST and nothing is made;
    the caller turns that into the CNI "interface already exists" error. MACs given here are set at
    creation (so nobody needs to read them back)."""
    peer: dict = {"ifname": peer_name, "net_ns_fd": netns_fd}
    spec: dict = {"ifname": host_name, "kind": "veth", "peer": peer}
    if host_mac:
        spec["address"] = host_mac
    if peer_mac:
        peer["address"] = peer_mac
    if mtu:
        spec["mtu"] = peer["mtu"] = mtu
    try:
        ipr.link("add", **spec)
    except NetlinkError as e:
        raise NetworkError(f"create veth pair {host_name} <-> {peer_name} (in {netns_path})",
                           _why_exists(e, host_name, peer_name), e.code) from e
    return [Change("create", f"veth pair {host_name} <-> {peer_name} (in {netns_path})",
                   f"ip link add {host_name}{f' mtu {mtu}' if mtu else ''} type veth peer name "
                   f"{peer_name} netns {netns_path}",
                   "a virtual cable: one end stays on the node, the other is the pod's interface")]


def _why_exists(e: NetlinkError, host_name: str, peer_name: str) -> str:
    if e.code == errno.EEXIST:
        return f"[Errno 17] {host_name} or {peer_name} already exists"
    return str(e)


def attach_to_bridge(ipr: IPRoute, port: LinkInfo, bridge: LinkInfo, hairpin: bool) -> list[Change]:
    """Plug `port` into `bridge`, set its hairpin mode, and bring it up."""
    changes: list[Change] = []
    if port.master != bridge.index:
        # master and up in one request: one netlink round trip fewer on every pod start
        call(f"attach {port.name} to {bridge.name}", ipr.link, "set", index=port.index,
             master=bridge.index, state="up")
        changes.append(Change("set", f"{port.name} master {bridge.name} up",
                              f"ip link set {port.name} master {bridge.name} up",
                              "plug the node's end of the cable into the pods' switch"))
        port = LinkInfo(port.index, port.name, port.kind, port.mac, port.mtu, True, bridge.index,
                        port.peer_index, port.peer_netnsid)
    if hairpin:
        # Hairpin: the bridge may send a frame back out of the port it came in on. Needed when a
        # pod's packet is NATed back to the same pod (a Service or hostPort pointing at itself).
        call(f"set hairpin on {port.name}", ipr.brport, "set", index=port.index, mode=1)
        changes.append(Change("set", f"hairpin mode on {port.name}",
                              f"bridge link set dev {port.name} hairpin on",
                              "let traffic a pod sends to itself through NAT come back to it"))
    if not port.up:
        call(f"set {port.name} up", ipr.link, "set", index=port.index, state="up")
        changes.append(Change("set", f"{port.name} up", f"ip link set {port.name} up"))
    return changes


def set_up(ipr: IPRoute, link: LinkInfo, where: str = "") -> list[Change]:
    if link.up:
        return []
    call(f"set {link.name} up{where}", ipr.link, "set", index=link.index, state="up")
    return [Change("set", f"{link.name} up{where}", f"ip link set {link.name} up")]


def set_down(ipr: IPRoute, link: LinkInfo, where: str = "") -> list[Change]:
    if not link.up:
        return []
    call(f"set {link.name} down{where}", ipr.link, "set", index=link.index, state="down")
    return [Change("set", f"{link.name} down{where}", f"ip link set {link.name} down")]


def delete_link(ipr: IPRoute, name: str, where: str = "") -> list[Change]:
    """Delete device `name` if it exists (deleting one end of a veth deletes both)."""
    link = get_link(ipr, name)
    if link is None:
        return []
    try:
        ipr.link("del", index=link.index)
    except NetlinkError as e:
        if e.code not in (errno.ENODEV, errno.ENOENT):
            raise NetworkError(f"delete {name}{where}", str(e), e.code) from e
        return []
    return [Change("delete", f"{link.kind or 'device'} {name}{where}", f"ip link del {name}")]
