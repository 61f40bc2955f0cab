"""What a pod's network looks like, gathered from the kernel, for `nodeagent net show`.

Everything is read back from the live system — nothing is taken from our own records except the
name of the pod's namespace — so what it prints is what the kernel will do with the pod's packets:

  - the pod's namespace, and its interfaces with addresses (read *inside* it, through a netlink
    socket the netns helper made there);
  - for each veth in the pod, its other end on the node (a veth knows its peer's ifindex: IFLA_LINK)
    and the bridge that end is plugged into;
  - the pod's routing table;
  - the nftables rules and set/map elements on the node that mention the pod's address or its
    attachment (masquerade, hostPorts).
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from pathlib import Path

from cni.cache import ResultCache


@dataclass(frozen=True)
class IfaceView:
    name: str
    kind: str
    up: bool
    mac: str
    mtu: int
    addresses: tuple[str, ...]
    node_peer: str = ""      # the veth's other end, on the node
    node_bridge: str = ""    # the bridge that end is plugged into


@dataclass(frozen=True)
class PodView:
    netns: str
    netns_id: int | None
    container_id: str = ""
    network: str = ""
    interfaces: tuple[IfaceView, ...] = ()
    routes: tuple[str, ...] = ()
    nft: tuple[str, ...] = ()
    cache_file: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


def resolve(pod: str, cache_dir: str) -> tuple[str, str, str, str]:
    """(netns path, container id, network, cache file) for a netns path or a container ID."""
    if Path(pod).exists():
        for e in ResultCache(cache_dir).all():
            if e.netns == pod:
                return pod, e.container_id, e.network, str(e.path)
        return pod, "", "", ""
    for e in ResultCache(cache_dir).all():
        if e.container_id == pod and e.ifname != "lo":
            return e.netns, e.container_id, e.network, str(e.path)
    raise LookupError(f"{pod!r} is neither a network namespace path nor a container ID in "
                      f"{Path(cache_dir) / 'results'}")


def gather(pod: str, cache_dir: str, access, nft_binary: str = "nft") -> PodView:
    from network.addrs import list_addresses, list_routes
    from network.links import get_link, list_links
    from network.netns import namespace_id
    from network.nft import Nft
    from network.rtnl import node_session, pod_session

    netns, cid, network, cache_file = resolve(pod, cache_dir)
    ifaces: list[IfaceView] = []
    with pod_session(access, netns) as ipr:
        links = list_links(ipr)
        names = {link.index: link.name for link in links}
        addrs = list_addresses(ipr)
        routes = tuple(r.describe(names) for r in list_routes(ipr, socket.AF_INET))
    with node_session() as node:
        for link in links:
            peer = bridge = ""
            if link.kind == "veth" and link.peer_index and link.peer_netnsid is not None:
                host = get_link(node, index=link.peer_index)
                if host is not None:
                    peer = host.name
                    master = get_link(node, index=host.master) if host.master else None
                    bridge = master.name if master else ""
            ifaces.append(IfaceView(link.name, link.kind or "device", link.up, link.mac, link.mtu,
                                    tuple(str(a) for i, a in addrs if i == link.index), peer, bridge))
    ips = [a.split("/")[0] for i in ifaces if i.name != "lo" for a in i.addresses]
    marks = ips + ([f"{cid}/"] if cid else [])
    nft_lines = _matching_rules(Nft(nft_binary), marks) if marks else []
    return PodView(netns, namespace_id(netns), cid, network, tuple(ifaces), routes, tuple(nft_lines),
                   cache_file)


def _matching_rules(nft, marks: list[str]) -> list[str]:
    """Lines of `nft list ruleset` that mention one of `marks`, under their table/chain/set headers."""
    out: list[str] = []
    for family, name in nft.list_tables():
        text = nft.text(family, name)
        header_stack: list[tuple[int, str]] = []   # (line number, text) of the open blocks
        printed: set[int] = set()
        for n, line in enumerate(text.splitlines()):
            stripped = line.strip()
            if stripped.endswith("{"):
                header_stack.append((n, line))
            elif stripped == "}":
                if header_stack:
                    header_stack.pop()
            elif any(m in line for m in marks):
                for hn, h in header_stack:
                    if hn not in printed:
                        out.append(h.rstrip(" {").replace("\t", "  "))
                        printed.add(hn)
                out.append(line.replace("\t", "  "))
    return out


def render(view: PodView, explain: bool = False) -> str:
    lines = [f"network namespace  {view.netns}" + (f"  (nsfs inode {view.netns_id})" if view.netns_id else "")]
    if explain:
        lines.append("    the pod's own network stack: its interfaces, routes and ports are separate from "
                     "the node's")
    if view.container_id:
        lines.append(f"container          {view.container_id} on network {view.network!r}")
    if view.cache_file:
        lines.append(f"cached ADD result  {view.cache_file}")
    lines.append("interfaces in the pod")
    for i in view.interfaces:
        state = "up" if i.up else "DOWN"
        lines.append(f"  {i.name:<8} {i.kind:<7} {state:<4} {' '.join(i.addresses) or '-':<20} mac {i.mac}  mtu {i.mtu}")
        if i.node_peer:
            lines.append(f"           veth peer on the node: {i.node_peer}" +
                         (f", plugged into bridge {i.node_bridge}" if i.node_bridge else ""))
            if explain:
                lines.append("           a veth pair is a cable: what the pod sends on "
                             f"{i.name} comes out of {i.node_peer} on the node, and the bridge switches it")
    lines.append("routes in the pod")
    lines += [f"  {r}" for r in view.routes] or ["  (none)"]
    if explain and any(r.startswith("default") for r in view.routes):
        lines.append("    the default route sends everything outside the pod's subnet to the gateway: the "
                     "bridge's address on the node")
    lines.append("nftables on the node that mention this pod")
    lines += [f"  {r}" for r in view.nft] or ["  (none)"]
    if explain and view.nft:
        lines.append("    pods_*/masquerade: traffic leaving the cluster gets the node's address; "
                     "hostports/hp-*: DNAT from the node's port to the pod")
    return "\n".join(lines)


def to_json(view: PodView) -> str:
    from dataclasses import asdict

    return json.dumps(asdict(view), indent=2)
