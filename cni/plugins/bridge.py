"""nodeagent-bridge: the pod's interface — a veth pair whose node end is plugged into a bridge.

ADD, in order (each step undone if a later one fails, so a failed ADD leaves nothing behind):
  1. the bridge exists and is up (created on the first pod: the node's pod switch, e.g. `cni0`);
  2. a veth pair: `vethXXXXXXXX` on the node, CNI_IFNAME (eth0) made directly inside the pod's
     namespace. If the pod already has an eth0 the kernel refuses and we stop *before* IPAM, so a
     duplicate ADD gets an error and costs no address;
  3. the node end joins the bridge (hairpin mode if configured) and comes up;
  4. the IPAM plugin (delegated, section 4 of the spec) picks the address;
  5. inside the pod: eth0 up, the address, the routes (default via the gateway);
  6. on the node: the gateway address on the bridge (isGateway) and net.ipv4.ip_forward=1;
  7. ipMasq: the pod's address joins the node's masquerade set (cni/plugins/ipmasq.py).
The result lists [bridge, node veth, pod eth0] with the IPs on interface 2, as the reference does.

DEL removes the masquerade entry, the veth pair (found by its name, derived from the container ID
and interface name, so no entry into the namespace is needed: if the namespace is gone the pair
went with it) and finally asks IPAM to free the address. Everything missing is fine.

CHECK compares the live state with prevResult: bridge, node veth on the bridge, eth0 in the pod
with its addresses, the masquerade entry, and the IPAM reservation.

Configuration: the reference bridge plugin's names (bridge, isGateway, isDefaultGateway, ipMasq,
mtu, hairpinMode, ipam, dns) plus `nonMasqueradeCIDRs` — destinations that keep the pod's source
address (the cluster's pod range: pod-to-pod across nodes must not be masqueraded).
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from dataclasses import dataclass

from cni import errors as E
from cni.errors import CNIError
from cni.invoke import find_in_path
from cni.plugins import ipmasq
from cni.result import DNS, Interface, IPConfig, Result, Route
from cni.skel import CmdArgs, Plugin, PluginContext
from cni.skel import main as skel_main

DEFAULT_BRIDGE = "cni0"
_UNSUPPORTED = ("vlan", "vlanTrunk", "macspoofchk", "enabledad", "promiscMode",
                "disableContainerInterface", "portIsolation")


@dataclass(frozen=True)
class BridgeConf:
    name: str
    bridge: str
    is_gateway: bool
    is_default_gateway: bool
    ip_masq: bool
    mtu: int | None
    hairpin: bool
    ipam_type: str
    non_masquerade: tuple
    dns: DNS


def parse_conf(conf: dict) -> BridgeConf:
    for key in _UNSUPPORTED:
        if conf.get(key):
            raise CNIError(E.UNSUPPORTED_FIELD, f"unsupported field {key}={json.dumps(conf[key])}",
                           "nodeagent-bridge does not implement it; use the reference bridge plugin")
    bridge = conf.get("bridge") or DEFAULT_BRIDGE
    if not isinstance(bridge, str) or len(bridge) > 15:
        raise CNIError(E.INVALID_NETWORK_CONFIG, f"invalid bridge name {bridge!r}", "at most 15 characters")
    mtu = conf.get("mtu")
    if mtu is not None and (not isinstance(mtu, int) or not 68 <= mtu <= 65535):
        raise CNIError(E.INVALID_NETWORK_CONFIG, f"invalid mtu {mtu!r}", "an integer from 68 to 65535")
    ipam = conf.get("ipam") or {}
    if not isinstance(ipam, dict) or not ipam.get("type"):
        raise CNIError(E.INVALID_NETWORK_CONFIG, "missing \"ipam\" with a \"type\"",
                       "nodeagent-bridge needs an IPAM plugin for the pod's address")
    nm = []
    for c in conf.get("nonMasqueradeCIDRs") or ():
        try:
            nm.append(ipaddress.ip_network(c, strict=False))
        except ValueError:
            raise CNIError(E.INVALID_NETWORK_CONFIG, f"invalid nonMasqueradeCIDRs entry {c!r}") from None
    default_gw = bool(conf.get("isDefaultGateway"))
    return BridgeConf(conf["name"], bridge, bool(conf.get("isGateway")) or default_gw, default_gw,
                      bool(conf.get("ipMasq")), mtu, bool(conf.get("hairpinMode")), ipam["type"],
                      tuple(nm), DNS.from_json(conf.get("dns")))


# --- delegation to the IPAM plugin -----------------------------------------------------------------

def ipam_exec(args: CmdArgs, ctx: PluginContext, ipam_type: str, command: str) -> bytes:
    """Run the IPAM plugin with our own environment and stdin, only CNI_COMMAND changed."""
    exe = find_in_path(ipam_type, list(args.path))
    env = dict(args.env, CNI_COMMAND=command)
    return ctx.runner.run(exe, ipam_type, env, args.stdin)


def _where(args: CmdArgs) -> str:
    return f" in {args.netns}"


# --- ADD -------------------------------------------------------------------------------------------

def cmd_add(args: CmdArgs, ctx: PluginContext) -> Result:
    from network.links import (attach_to_bridge, create_veth_into, ensure_bridge, get_link, host_veth_name,
                               stable_mac)
    from network.errors import NetworkError
    from network.rtnl import node_session

    conf = parse_conf(args.config)
    host_name = host_veth_name(args.container_id, args.ifname)
    with node_session() as node:
        br, changes = ensure_bridge(node, conf.bridge, conf.mtu)
        ctx.changes.extend(changes)
        try:
            nsfd = os.open(args.netns, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise CNIError(E.INTERNAL, f"failed to open netns {args.netns!r}", e.strerror or str(e)) from e
        # MACs chosen here (stable per attachment, locally administered) rather than read back later
        host_mac = stable_mac(f"host/{args.container_id}/{args.ifname}")
        pod_mac = stable_mac(f"pod/{args.container_id}/{args.ifname}")
        try:
            ctx.changes.extend(create_veth_into(node, host_name, args.ifname, nsfd, args.netns, conf.mtu,
                                                host_mac, pod_mac))
        except NetworkError as e:
            if e.errno == 17:
                raise CNIError(E.INTERFACE_EXISTS, f"interface {args.ifname!r} (or its node end {host_name}) "
                                                 f"already exists for container {args.container_id}",
                               "a second ADD for the same container and interface needs a DEL first") from e
            raise
        finally:
            os.close(nsfd)
        # From here on, a failure must undo what was made: the veth pair, the address, the NAT entry.
        masq_ips: list = []
        ipam_tried = False
        try:
            host = get_link(node, host_name)
            assert host is not None
            ctx.changes.extend(attach_to_bridge(node, host, br, conf.hairpin))
            ipam_tried = True
            raw = ipam_exec(args, ctx, conf.ipam_type, "ADD")
            ipam = Result.from_json(json.loads(raw), args.cni_version)
            if not ipam.ips:
                raise CNIError(E.INTERNAL, f"IPAM plugin {conf.ipam_type} returned no IP configuration")
            routes = _routes(conf, ipam)
            masq = None
            if conf.ip_masq:  # started now, the nft transaction runs while we configure the pod
                masq_ips = [ip.address.ip for ip in ipam.ips]
                exempt = [ip.address.network for ip in ipam.ips] + list(conf.non_masquerade)
                masq = ipmasq.begin_add(ctx.nft(), conf.name, masq_ips, exempt, args.container_id,
                                        args.ifname)
            try:
                container = _configure_pod(args, ctx, conf, ipam, routes)
                _configure_node(node, ctx, conf, ipam, br)
            finally:
                if masq is not None:  # always reaped, also when the pod configuration failed
                    ctx.changes.extend(masq.finish())
        except BaseException:
            _undo_add(args, ctx, conf, node, host_name, masq_ips, ipam_tried)
            raise
    ifaces = (Interface(br.name, br.mac, mtu=br.mtu), Interface(host.name, host.mac, mtu=host.mtu),
              container)
    ips = tuple(IPConfig(ip.address, ip.gateway, 2) for ip in ipam.ips)
    dns = conf.dns if (conf.dns.nameservers or conf.dns.domain or conf.dns.search) else ipam.dns
    return Result(args.cni_version, ifaces, ips, routes, dns)


def _undo_add(args: CmdArgs, ctx: PluginContext, conf: BridgeConf, node, host_name: str,
              masq_ips: list, ipam_tried: bool) -> None:
    """Undo a failed ADD in reverse order. A failure here must not hide the error that got us here,
    so each step is best effort and only noted on stderr (the runtime will DEL again anyway)."""
    from network.errors import NetworkError
    from network.links import delete_link

    steps = []
    if masq_ips:
        steps.append(("remove the ipMasq entry", lambda: ipmasq.remove(ctx.nft(), conf.name, masq_ips)))
    if ipam_tried:  # the spec: a failed delegated ADD is followed by a delegated DEL too
        steps.append(("release the address", lambda: ipam_exec(args, ctx, conf.ipam_type, "DEL")))
    steps.append((f"delete {host_name}", lambda: delete_link(node, host_name)))
    for what, step in steps:
        try:
            step()
        except (CNIError, NetworkError, OSError) as e:
            sys.stderr.write(f"nodeagent-bridge: while undoing a failed ADD, could not {what}: {e}\n")


def _routes(conf: BridgeConf, ipam: Result) -> tuple[Route, ...]:
    routes = list(ipam.routes)
    if conf.is_default_gateway:
        for ip in ipam.ips:
            default = ipaddress.ip_network("0.0.0.0/0" if ip.address.version == 4 else "::/0")
            if ip.gateway is not None and not any(r.dst == default for r in routes):
                routes.append(Route(default, ip.gateway))
    return tuple(routes)


def _configure_pod(args: CmdArgs, ctx: PluginContext, conf: BridgeConf, ipam: Result,
                   routes: tuple[Route, ...]) -> Interface:
    from network.addrs import ensure_address, ensure_route
    from network.links import get_link, set_up
    from network.rtnl import pod_session

    where = _where(args)
    with pod_session(ctx.netns_access(), args.netns) as pod:
        link = get_link(pod, args.ifname)
        if link is None:
            raise CNIError(E.INTERNAL, f"{args.ifname} vanished from {args.netns} during ADD")
        ctx.changes.extend(set_up(pod, link, where))
        for ip in ipam.ips:
            ctx.changes.extend(ensure_address(pod, link, ip.address, where))
        for r in routes:
            gw = r.gw or next((ip.gateway for ip in ipam.ips if ip.address.version == r.dst.version), None)
            ctx.changes.extend(ensure_route(pod, r.dst, gw, link, where=where,
                                            why="the pod reaches everything beyond its subnet through "
                                                "the node's bridge" if r.dst.prefixlen == 0 else ""))
    return Interface(link.name, link.mac, args.netns, mtu=link.mtu)


def _configure_node(node, ctx: PluginContext, conf: BridgeConf, ipam: Result, br) -> None:
    from network.addrs import ensure_address
    from network.sysctl import ensure_sysctl

    if not conf.is_gateway:
        return
    for ip in ipam.ips:
        if ip.gateway is None:
            continue
        gw = ipaddress.ip_interface(f"{ip.gateway}/{ip.address.network.prefixlen}")
        ctx.changes.extend(ensure_address(node, br, gw))
        key = "net.ipv4.ip_forward" if gw.version == 4 else "net.ipv6.conf.all.forwarding"
        ctx.changes.extend(ensure_sysctl(key, "1", "the node routes the pods' packets"))


# --- DEL -------------------------------------------------------------------------------------------

def cmd_del(args: CmdArgs, ctx: PluginContext) -> None:
    from network.links import delete_link, host_veth_name
    from network.rtnl import node_session

    conf = parse_conf(args.config)
    masq = None
    if conf.ip_masq:
        ips = _owned_ips(args, ctx)
        if ips:  # the nft deletion waits for the kernel; the veth goes meanwhile
            masq = ipmasq.begin_remove(ctx.nft(), conf.name, ips)
    try:
        with node_session() as node:
            ctx.changes.extend(delete_link(node, host_veth_name(args.container_id, args.ifname)))
    finally:
        if masq is not None:
            ctx.changes.extend(masq.finish())
    # last: only now may the address go to another pod (whose masquerade entry we must not remove)
    ipam_exec(args, ctx, conf.ipam_type, "DEL")


def _owned_ips(args: CmdArgs, ctx: PluginContext) -> list:
    """The attachment's addresses: from prevResult, else from eth0 if the namespace still exists."""
    prev = args.prev_result()
    if prev is not None:
        return [ip.address.ip for ip in prev.ips]
    if not args.netns:
        return []
    from network.addrs import list_addresses
    from network.errors import NetnsGone
    from network.links import get_link
    from network.rtnl import pod_session

    try:
        with pod_session(ctx.netns_access(), args.netns) as pod:
            link = get_link(pod, args.ifname)
            return [a.ip for _, a in list_addresses(pod, link)] if link else []
    except NetnsGone:
        return []


# --- CHECK -----------------------------------------------------------------------------------------

def cmd_check(args: CmdArgs, ctx: PluginContext) -> None:
    from network.addrs import list_addresses
    from network.links import get_link
    from network.rtnl import node_session, pod_session

    conf = parse_conf(args.config)
    prev = args.prev_result()
    if prev is None:
        raise CNIError(E.INVALID_NETWORK_CONFIG, "CHECK needs a prevResult", "run ADD first")
    ipam_exec(args, ctx, conf.ipam_type, "CHECK")
    mine = [i for i in prev.interfaces if i.sandbox == args.netns and i.name == args.ifname]
    if not mine:
        raise CNIError(E.INTERNAL, f"prevResult has no interface {args.ifname} in {args.netns}")
    with node_session() as node:
        br = get_link(node, conf.bridge)
        if br is None or br.kind != "bridge":
            raise CNIError(E.INTERNAL, f"bridge {conf.bridge} is missing")
        host_ifs = [i for i in prev.interfaces if not i.sandbox and i.name != conf.bridge]
        host = get_link(node, host_ifs[0].name) if host_ifs else None
        if host is None:
            raise CNIError(E.INTERNAL, "the node end of the pod's veth is missing")
        if host.master != br.index:
            raise CNIError(E.INTERNAL, f"{host.name} is not plugged into bridge {conf.bridge}")
    with pod_session(ctx.netns_access(), args.netns) as pod:
        link = get_link(pod, args.ifname)
        if link is None or link.kind != "veth":
            raise CNIError(E.INTERNAL, f"{args.ifname} is missing in {args.netns} (or not a veth)")
        if link.peer_index != host.index:
            raise CNIError(E.INTERNAL, f"{args.ifname} in {args.netns} is not the peer of {host.name}")
        if mine[0].mac and link.mac != mine[0].mac:
            raise CNIError(E.INTERNAL, f"{args.ifname} has MAC {link.mac}, prevResult says {mine[0].mac}")
        have = {a for _, a in list_addresses(pod, link)}
    missing = [str(ip.address) for ip in prev.sandbox_ips() if ip.address not in have]
    if missing:
        raise CNIError(E.INTERNAL, f"{args.ifname} in {args.netns} lacks address {', '.join(missing)}")
    if conf.ip_masq:
        present = {ip for ip, _ in ipmasq.elements(ctx.nft(), conf.name)}
        lost = [str(ip.address.ip) for ip in prev.ips if ip.address.version == 4
                and str(ip.address.ip) not in present]
        if lost:
            raise CNIError(E.INTERNAL, f"ipMasq entry missing for {', '.join(lost)}")


# --- GC and STATUS ---------------------------------------------------------------------------------

def cmd_gc(args: CmdArgs, ctx: PluginContext) -> None:
    from cni.plugins.hostlocal import valid_attachments

    conf = parse_conf(args.config)
    errors = []
    try:
        ipam_exec(args, ctx, conf.ipam_type, "GC")  # the spec: GC must be forwarded to delegates
    except CNIError as e:
        errors.append(str(e))
    if conf.ip_masq:
        ctx.changes.extend(ipmasq.gc(ctx.nft(), conf.name, valid_attachments(args.config)))
    if errors:
        raise CNIError(E.INTERNAL, "GC incomplete", "; ".join(errors))


def cmd_status(args: CmdArgs, ctx: PluginContext) -> None:
    conf = parse_conf(args.config)
    if conf.ip_masq and not ctx.nft().available():
        raise CNIError(E.PLUGIN_NOT_AVAILABLE, "nft not found", "ipMasq needs the nftables package")
    ipam_exec(args, ctx, conf.ipam_type, "STATUS")


PLUGIN = Plugin(name="nodeagent-bridge",
                about="nodeagent-bridge: veth pair into the pod, node end on a bridge; IPAM; ipMasq",
                add=cmd_add, delete=cmd_del, check=cmd_check, gc=cmd_gc, status=cmd_status)


def main() -> None:
    skel_main(PLUGIN)
