"""nodeagent-portmap: hostPort — a port on the node's addresses that leads to a port of the pod.

A chained plugin (it runs after the bridge plugin and reads the pod's address from prevResult). The
runtime passes the pod's ports in `runtimeConfig.portMappings` (the `portMappings` capability):
    [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ""}]

The rules, all in one nftables table `ip nodeagent_hostport`:

    map hostports        { inet_proto . inet_service : verdict }
                           tcp . 8080 comment "<container>/<ifname>" : goto hp-1a2b3c4d5e6f
    map hostip_hostports { ipv4_addr . inet_proto . inet_service : verdict }
    chain hp-1a2b3c4d5e6f {                                                  # one per mapping
        ip saddr { 127.0.0.0/8, 10.244.1.0/24 } meta mark set meta mark | 0x2000   # snat only
        meta l4proto tcp dnat to 10.244.1.5:80
    }
    chain hostports  { ip daddr . meta l4proto . th dport vmap @hostip_hostports
                       meta l4proto . th dport vmap @hostports }
    chain prerouting  { type nat hook prerouting priority dstnat; fib daddr type local jump hostports }
    chain output      { type nat hook output priority -100;       fib daddr type local jump hostports }
    chain postrouting { type nat hook postrouting priority srcnat; meta mark & 0x2000 == 0x2000 masquerade }
    chain input       { type filter hook input priority filter;
                        iifname != "lo" ip daddr 127.0.0.0/8 ip saddr != 127.0.0.0/8
                        ct state != { established, related } ct status ! dnat drop }
and, with snat, the sysctl net.ipv4.conf.<the interface that routes the pod, cni0>.route_localnet=1.
After the rules are in, conntrack's entries for UDP flows to a new UDP hostPort are deleted, as the
reference plugin does (network/conntrack.py says why).

Why each piece:
  - DNAT in *prerouting* catches packets arriving from elsewhere (another node, a client, another
    pod); in *output* it catches connections the node itself opens. `fib daddr type local` limits
    both to packets addressed to one of the node's own addresses, 127.0.0.1 included. (nft 1.0.6
    refuses the name `dstnat` on the output hook, so the output chain says -100, the same number.)
  - One rule looks a packet up in a verdict map instead of one rule per port: the cost stays the
    same with many pods, and adding a pod is adding an element (and its small chain), not rewriting
    rules. (A map straight to "address . port" for `dnat` would be shorter, but nft 1.0.6 crashes
    on that statement in JSON; the verdict map with one chain per mapping is what kube-proxy's
    nftables mode does anyway.)
  - Masquerade ("snat", on by default), exactly the two cases of the reference plugin's iptables
    backend (plugins/meta/portmap/portmap_iptables.go, fillDnatRules: a "hairpin" and a "localhost"
    rule jumping to CNI-HOSTPORT-SETMARK, mark bit 13 = 0x2000, masqueraded in CNI-HOSTPORT-MASQ):
      * from the pod's own subnet — a pod on this node (or the pod itself) reaching a hostPort
        through a node address. DNAT sends the packet to the server pod with the client's address,
        on the same bridge: the server would answer the client directly, switched by the bridge,
        and the client, which spoke to the node's address, drops the reply. Masquerading makes the
        reply go back through the node, where conntrack undoes both translations. (br_netfilter
        with bridge-nf-call-iptables=1 also sends such a bridged reply through conntrack, but a
        node need not have it, and the reference does not rely on it either.)
      * from 127.0.0.0/8 — the node reaching a hostPort on 127.0.0.1. After DNAT such a packet
        leaves through the bridge with a loopback source, which the kernel drops as a martian
        unless route_localnet=1 on that interface (the sysctl above), and the pod's reply would go
        to the pod's own loopback; masquerading gives it the bridge's address instead. (The
        reference matches 127.0.0.1 only; a client bound to 127.0.0.2 needs the same treatment.)
    The mark is set only in a mapping's chain, so only hostPort traffic is masqueraded, never
    plain pod-to-pod traffic (which, with br_netfilter, passes the postrouting hook too).
  - The input guard: route_localnet=1 on the bridge also lets a *pod* send packets addressed to
    127.0.0.1 to the node, which would deliver them to services listening on the node's loopback
    only (CVE-2020-8558). kube-proxy, which sets route_localnet too, drops them with the same rule
    (its KUBE-FIREWALL chain); the reference portmap plugin does not.

A hostPort another pod already maps is refused (error 100) instead of silently shadowed: the map
cannot hold the same key twice. A mapping's chain is named after a hash of (attachment, mapping,
pod address), so DEL can remove exactly its own element and chain — the add-then-delete transaction
of network/nft.py fails, and changes nothing, if the key leads to another pod's chain. Everything a
pod adds lives in its map elements and their chains: DEL leaves only the shared, empty layout (as
the reference leaves its top-level chains), which `nodeagent down` removes with the table.
route_localnet stays 1 after DEL, as the reference leaves it (other pods on the bridge may need it;
the bridge, and its sysctls with it, goes at `nodeagent down`).
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import logging
import threading
from dataclasses import dataclass

from cni import errors as E
from cni.errors import CNIError
from cni.plugins.ipmasq import attachment
from cni.result import Result
from cni.skel import CmdArgs, Plugin, PluginContext
from cni.skel import main as skel_main
from network import nft as N
from network.changes import Change
from network.errors import NetworkError, NftError

log = logging.getLogger(__name__)

TABLE = "nodeagent_hostport"
FAMILY = "ip"
PROTOCOLS = ("tcp", "udp", "sctp")
# The packet mark that asks postrouting to masquerade: the reference plugin's default markMasqBit
# (13), so a node running both marks the same bit for the same reason.
MASQ_MARK = 1 << 13
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


@dataclass(frozen=True)
class PortMapping:
    host_port: int
    container_port: int
    protocol: str
    host_ip: str = ""  # "" = every address of the node

    def key(self) -> dict:
        parts = [self.protocol, self.host_port]
        if self.host_ip:
            parts.insert(0, self.host_ip)
        return {"concat": parts}

    def shown(self) -> str:
        return f"{self.host_ip or '*'}:{self.host_port}/{self.protocol}"

    @property
    def map_name(self) -> str:
        return "hostip_hostports" if self.host_ip else "hostports"


def parse_mappings(conf: dict) -> list[PortMapping]:
    raw = (conf.get("runtimeConfig") or {}).get("portMappings") or []
    if not isinstance(raw, list):
        raise CNIError(E.INVALID_NETWORK_CONFIG, "runtimeConfig.portMappings must be a list")
    out = []
    for i, m in enumerate(raw):
        where = f"runtimeConfig.portMappings[{i}]"
        if not isinstance(m, dict):
            raise CNIError(E.INVALID_NETWORK_CONFIG, f"{where} must be an object")
        proto = str(m.get("protocol") or "tcp").lower()
        if proto not in PROTOCOLS:
            raise CNIError(E.INVALID_NETWORK_CONFIG, f"{where}.protocol {m.get('protocol')!r} unknown",
                           "tcp, udp or sctp")
        for key in ("hostPort", "containerPort"):
            v = m.get(key)
            if not isinstance(v, int) or not 1 <= v <= 65535:
                raise CNIError(E.INVALID_NETWORK_CONFIG, f"{where}.{key} {v!r} is not a port (1-65535)")
        host_ip = m.get("hostIP") or ""
        if host_ip:
            try:
                ip = ipaddress.ip_address(host_ip)
            except ValueError:
                raise CNIError(E.INVALID_NETWORK_CONFIG, f"{where}.hostIP {host_ip!r} is not an IP") from None
            if ip.version != 4:
                continue  # IPv6 host ports are not implemented here: skipped, like a wrong family
            host_ip = "" if ip.is_unspecified else str(ip)
        out.append(PortMapping(m["hostPort"], m["containerPort"], proto, host_ip))
    return out


def _pod_addr(prev: Result | None) -> ipaddress.IPv4Interface | None:
    """The pod's IPv4 address with its prefix (10.244.1.5/24: the subnet is the masquerade's)."""
    if prev is None:
        return None
    for ip in prev.sandbox_ips() or list(prev.ips):
        if ip.address.version == 4:
            return ip.address
    return None


def _pod_ip(prev: Result | None) -> ipaddress.IPv4Address | None:
    addr = _pod_addr(prev)
    return addr.ip if addr is not None else None


def chain_name(owner: str, m: PortMapping, pod_ip) -> str:
    """The mapping's own chain: named by a hash of who, what and where to (≤ 31 characters)."""
    seed = f"{owner}|{m.shown()}|{pod_ip}:{m.container_port}"
    return "hp-" + hashlib.sha256(seed.encode()).hexdigest()[:12]


def _base() -> list[dict]:
    """The table, maps, set and chains: idempotent, and the shared chains rewritten whole each time."""
    proto_port = ["inet_proto", "inet_service"]
    l4 = [{"meta": {"key": "l4proto"}}, N.payload("th", "dport")]
    guard = N.match(N.payload("ip", "protocol"), {"set": list(PROTOCOLS)})
    jump = [N.match({"fib": {"result": "type", "flags": ["daddr"]}}, "local"),
            {"jump": {"target": "hostports"}}]
    loopback = N.prefix(LOOPBACK)
    return [
        {"add": N.table(FAMILY, TABLE)},
        {"add": N.map_(FAMILY, TABLE, "hostports", proto_port, "verdict")},
        {"add": N.map_(FAMILY, TABLE, "hostip_hostports", ["ipv4_addr", *proto_port], "verdict")},
        {"add": N.chain(FAMILY, TABLE, "hostports")},
        {"flush": N.chain(FAMILY, TABLE, "hostports")},
        {"add": N.rule(FAMILY, TABLE, "hostports", [guard, {"vmap": {
            "key": {"concat": [N.payload("ip", "daddr"), *l4]}, "data": "@hostip_hostports"}}])},
        {"add": N.rule(FAMILY, TABLE, "hostports", [guard, {"vmap": {
            "key": {"concat": l4}, "data": "@hostports"}}])},
        {"add": N.chain(FAMILY, TABLE, "prerouting", hook="prerouting", prio=-100)},
        {"flush": N.chain(FAMILY, TABLE, "prerouting")},
        {"add": N.rule(FAMILY, TABLE, "prerouting", jump)},
        {"add": N.chain(FAMILY, TABLE, "output", hook="output", prio=-100)},
        {"flush": N.chain(FAMILY, TABLE, "output")},
        {"add": N.rule(FAMILY, TABLE, "output", jump)},
        {"add": N.chain(FAMILY, TABLE, "postrouting", hook="postrouting", prio=100)},
        {"flush": N.chain(FAMILY, TABLE, "postrouting")},
        {"add": N.rule(FAMILY, TABLE, "postrouting", [
            N.match({"&": [{"meta": {"key": "mark"}}, MASQ_MARK]}, MASQ_MARK), {"masquerade": None}])},
        {"add": N.chain(FAMILY, TABLE, "input", hook="input", prio=0, kind="filter")},
        {"flush": N.chain(FAMILY, TABLE, "input")},
        {"add": N.rule(FAMILY, TABLE, "input", [
            N.match({"meta": {"key": "iifname"}}, "lo", "!="),
            N.match(N.payload("ip", "daddr"), loopback), N.match(N.payload("ip", "saddr"), loopback, "!="),
            N.match({"ct": {"key": "state"}}, {"set": ["established", "related"]}, "!="),
            N.match({"ct": {"key": "status"}}, "dnat", "!"), {"drop": None}],
            comment="CVE-2020-8558: route_localnet must not open the node's loopback to pods")},
    ]


# As in ipmasq.py: the shared layout is rewritten (which deletes, which waits for RCU) only the
# first time this process needs it, or when the table turns out to be gone.
_layout_written = False
_layout_lock = threading.Lock()


def forget_layout() -> None:
    global _layout_written
    with _layout_lock:
        _layout_written = False


def _run_with_layout(nft: N.Nft, cmds: list[dict], what: str) -> None:
    global _layout_written
    with _layout_lock:
        done = _layout_written
    if done:
        try:
            nft.run(cmds, what)
            return
        except NftError as e:
            if e.errno != errno.ENOENT:
                raise
    nft.run(_base() + cmds, what)
    with _layout_lock:
        _layout_written = True


def _mapping_cmds(m: PortMapping, pod: ipaddress.IPv4Interface, owner: str, snat: bool) -> list[dict]:
    pod_ip = pod.ip
    chain = chain_name(owner, m, pod_ip)
    masq = []
    if snat:  # mark before the DNAT: postrouting masquerades what carries the mark (see above)
        sources = {"set": [N.prefix(LOOPBACK), N.prefix(pod.network)]}
        masq = [{"add": N.rule(FAMILY, TABLE, chain, [
            N.match(N.payload("ip", "saddr"), sources),
            {"mangle": {"key": {"meta": {"key": "mark"}},
                        "value": {"|": [{"meta": {"key": "mark"}}, MASQ_MARK]}}}], comment=owner)}]
    return [
        {"add": N.chain(FAMILY, TABLE, chain)},
        {"flush": N.chain(FAMILY, TABLE, chain)},
        *masq,
        {"add": N.rule(FAMILY, TABLE, chain, [N.match({"meta": {"key": "l4proto"}}, m.protocol),
                                               {"dnat": {"addr": str(pod_ip), "port": m.container_port}}],
                       comment=owner)},
        {"add": N.elements(FAMILY, TABLE, m.map_name, [[{"elem": {"val": m.key(), "comment": owner}},
                                                        {"goto": {"target": chain}}]])},
    ]


def _elements_of(nft: N.Nft) -> list[tuple[str, list, str | None, str]]:
    """(map or set name, key parts, goto target or None, owner comment) of every element."""
    out = []
    for o in nft.list_table(FAMILY, TABLE) or []:
        obj = o.get("map") or o.get("set")
        if not obj:
            continue
        for e in obj.get("elem", []):
            k, v = (e[0], e[1]) if isinstance(e, list) else (e, None)
            inner = k["elem"] if isinstance(k, dict) and "elem" in k else {"val": k}
            val = inner["val"]
            parts = val["concat"] if isinstance(val, dict) and "concat" in val else [val]
            target = v.get("goto", {}).get("target") if isinstance(v, dict) else None
            out.append((obj["name"], parts, target, inner.get("comment", "")))
    return out


def _mapping_chains(nft: N.Nft) -> list[str]:
    return [o["chain"]["name"] for o in nft.list_table(FAMILY, TABLE) or []
            if "chain" in o and o["chain"]["name"].startswith("hp-")]


def cmd_add(args: CmdArgs, ctx: PluginContext) -> Result:
    prev = args.prev_result()
    if prev is None:
        raise CNIError(E.INVALID_NETWORK_CONFIG, "nodeagent-portmap must be chained after an interface "
                                                 "plugin", "it needs prevResult to find the pod's address")
    mappings = parse_mappings(args.config)
    if not mappings:
        return prev.with_version(args.cni_version)
    pod = _pod_addr(prev)
    if pod is None:
        raise CNIError(E.INVALID_NETWORK_CONFIG, "prevResult has no IPv4 address for the pod")
    pod_ip = pod.ip
    owner = attachment(args.container_id, args.ifname)
    snat = args.config.get("snat", True) is not False
    cmds = []
    for m in mappings:
        cmds += _mapping_cmds(m, pod, owner, snat)
    nft = ctx.nft()
    try:
        _run_with_layout(nft, cmds, f"map host ports of {owner}")
    except NftError as e:
        if e.errno == errno.EEXIST:  # the whole batch was rolled back; say who holds the port
            elems = _elements_of(nft)
            for m in mappings:
                for name, parts, target, holder in elems:
                    if name == m.map_name and parts == m.key()["concat"] and \
                            target != chain_name(owner, m, pod_ip):
                        raise CNIError(E.ADDRESS_IN_USE, f"hostPort {m.shown()} is already in use",
                                       f"mapped by {holder or 'another pod'}") from e
        raise
    for m in mappings:
        ctx.changes.append(Change(
            "add", f"hostPort {m.shown()} -> {pod_ip}:{m.container_port}",
            f"nft add element {FAMILY} {TABLE} {m.map_name} {{ {' . '.join(map(str, m.key()['concat']))}"
            f" : goto {chain_name(owner, m, pod_ip)} }}",
            "DNAT from the node's addresses to the pod (prerouting: from outside; output: from the node)"))
    if snat:
        ctx.changes.extend(_route_localnet(pod_ip))
    ctx.changes.extend(_forget_udp_flows(mappings))
    return prev.with_version(args.cni_version)


def _forget_udp_flows(mappings: list[PortMapping]) -> list[Change]:
    """Delete conntrack's UDP entries to each UDP hostPort, now that its DNAT is in place (why:
    network/conntrack.py). As in the reference plugin a failure only costs the old flows their
    redirection, so it is logged, not fatal."""
    from network.conntrack import delete_flows_to_port

    changes = []
    for port in sorted({m.host_port for m in mappings if m.protocol == "udp"}):
        try:
            n = delete_flows_to_port("udp", port)
        except NetworkError as e:
            log.warning("stale UDP flows to hostPort %d stay: %s", port, e)
            continue
        if n:
            changes.append(Change("remove", f"{n} conntrack entries of UDP flows to port {port}",
                                  f"conntrack -D -p udp --orig-port-dst {port}",
                                  "flows that began before the hostPort existed would bypass its DNAT"))
    return changes


def _route_localnet(pod_ip) -> list[Change]:
    """route_localnet=1 on the interface that routes the pod (the bridge), as the reference's
    enableLocalnetRouting(getRoutableHostIF(podIP)) does: a connection to 127.0.0.1:<hostPort>,
    DNATed to the pod, leaves through that interface with source 127.0.0.1 (masqueraded only at
    postrouting, after the routing decision that would drop it as a martian)."""
    from network.addrs import route_interface
    from network.rtnl import node_session
    from network.sysctl import ensure_sysctl

    with node_session() as ipr:
        ifname = route_interface(ipr, pod_ip)
    if ifname is None:
        return []
    return ensure_sysctl(f"net/ipv4/conf/{ifname}/route_localnet", "1",
                         "the node reaches the pod's hostPorts on 127.0.0.1")


def _delete_mapping(nft: N.Nft, map_name: str, key_parts: list, chain: str) -> bool:
    """Remove one element and its chain; False if there was nothing (of ours) to remove."""
    key = {"concat": key_parts}
    try:
        # add-then-delete: the add is a no-op if the key already leads to `chain` and fails with
        # EEXIST if it leads elsewhere (not ours: nothing is changed) — see network/nft.py
        nft.run([{"add": N.elements(FAMILY, TABLE, map_name, [[key, {"goto": {"target": chain}}]])},
                 {"delete": N.elements(FAMILY, TABLE, map_name, [key])},
                 {"delete": N.chain(FAMILY, TABLE, chain)}], f"unmap {key_parts}")
    except NftError as e:
        if e.errno in (errno.ENOENT, errno.EEXIST):
            return False
        raise
    return True


def _remove(nft: N.Nft, mappings: list[PortMapping], pod_ip, owner: str) -> list[Change]:
    changes = []
    for m in mappings:
        if _delete_mapping(nft, m.map_name, m.key()["concat"], chain_name(owner, m, pod_ip)):
            changes.append(Change("remove", f"hostPort {m.shown()} -> {pod_ip}:{m.container_port}",
                                  f"nft delete element {FAMILY} {TABLE} {m.map_name} "
                                  f"{{ {' . '.join(map(str, m.key()['concat']))} }}"))
    return changes


def _remove_owned_by(nft: N.Nft, is_stale) -> list[Change]:
    """Remove every element (and its chain) whose owner comment `is_stale`, then orphan chains."""
    changes = []
    for name, parts, target, owner in _elements_of(nft):
        if not is_stale(owner):
            continue
        if target:
            done = _delete_mapping(nft, name, parts, target)
        else:  # a plain set's element: the `hairpin` set of tables written by earlier versions
            try:
                nft.run([{"delete": N.elements(FAMILY, TABLE, name, [{"concat": parts}])}], "remove element")
                done = True
            except NftError as e:
                if e.errno != errno.ENOENT:
                    raise
                done = False
        if done:
            changes.append(Change("remove", f"{' . '.join(map(str, parts))} from {TABLE} {name} ({owner})"))
    referenced = {t for _, _, t, _ in _elements_of(nft) if t}
    for chain in _mapping_chains(nft):
        if chain not in referenced:  # left by an interrupted DEL: nothing can reach it
            try:
                nft.run([{"delete": N.chain(FAMILY, TABLE, chain)}], f"remove orphan chain {chain}")
                changes.append(Change("delete", f"chain {FAMILY} {TABLE} {chain}"))
            except NftError as e:
                if e.errno not in (errno.ENOENT, errno.EBUSY):
                    raise
    return changes


def cmd_del(args: CmdArgs, ctx: PluginContext) -> None:
    mappings = parse_mappings(args.config)
    owner = attachment(args.container_id, args.ifname)
    pod_ip = _pod_ip(args.prev_result())
    nft = ctx.nft()
    if pod_ip is not None and mappings:
        ctx.changes.extend(_remove(nft, mappings, pod_ip, owner))
    elif mappings:
        # no prevResult to tell us the pod's address: find this attachment's elements by comment
        ctx.changes.extend(_remove_owned_by(nft, lambda o: o == owner))


def cmd_check(args: CmdArgs, ctx: PluginContext) -> None:
    mappings = parse_mappings(args.config)
    if not mappings:
        return
    pod_ip = _pod_ip(args.prev_result())
    if pod_ip is None:
        raise CNIError(E.INVALID_NETWORK_CONFIG, "CHECK needs a prevResult with the pod's address")
    owner = attachment(args.container_id, args.ifname)
    nft = ctx.nft()
    present = {(name, tuple(parts), target) for name, parts, target, _ in _elements_of(nft)}
    for m in mappings:
        if (m.map_name, tuple(m.key()["concat"]), chain_name(owner, m, pod_ip)) not in present:
            raise CNIError(E.INTERNAL, f"hostPort {m.shown()} -> {pod_ip}:{m.container_port} is not mapped")
    if args.config.get("snat", True) is not False:  # the reference's CHECK counts its masquerade rules too
        marking = {o["rule"]["chain"] for o in nft.list_table(FAMILY, TABLE) or []
                   if "rule" in o and any("mangle" in e for e in o["rule"]["expr"])}
        for m in mappings:
            if chain_name(owner, m, pod_ip) not in marking:
                raise CNIError(E.INTERNAL, f"hostPort {m.shown()} -> {pod_ip}:{m.container_port} has no "
                                           "masquerade for hairpin and localhost connections")


def cmd_gc(args: CmdArgs, ctx: PluginContext) -> None:
    from cni.plugins.hostlocal import valid_attachments

    valid = {attachment(c, i) for c, i in valid_attachments(args.config)}
    ctx.changes.extend(_remove_owned_by(ctx.nft(), lambda o: bool(o) and o not in valid))


def cmd_status(args: CmdArgs, ctx: PluginContext) -> None:
    if not ctx.nft().available():
        raise CNIError(E.PLUGIN_NOT_AVAILABLE, "nft not found", "hostPort needs the nftables package")


PLUGIN = Plugin(name="nodeagent-portmap",
                about="nodeagent-portmap: hostPort DNAT (prerouting and output) and masquerade of "
                      "hairpin and localhost connections, via nftables",
                add=cmd_add, delete=cmd_del, check=cmd_check, gc=cmd_gc, status=cmd_status)


def main() -> None:
    skel_main(PLUGIN)
