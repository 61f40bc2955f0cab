"""nodeagent-portmap: hostPort — a port on the node's addresses that leads to a port of the pod.

A chained plugin (it runs after the bridge plugin and reads the pod's address from prevResult). The
runtime passes the pod's ports in `runtimeConfig.portMappings` (the `portMappings` capability):
    [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ""}]

The rules, all in one nftables table `ip nodeagent_hostport`:

    map hostports        { inet_proto . inet_service : verdict }
                           tcp . 8080 comment "<container>/<ifname>" : goto hp-1a2b3c4d5e6f
    map hostip_hostports { ipv4_addr . inet_proto . inet_service : verdict }
    chain hp-1a2b3c4d5e6f { meta l4proto tcp dnat to 10.244.1.5:80 }      # one per mapping
    set hairpin          { ipv4_addr . ipv4_addr }          10.244.1.5 . 10.244.1.5
    chain hostports  { ip daddr . meta l4proto . th dport vmap @hostip_hostports
                       meta l4proto . th dport vmap @hostports }
    chain prerouting  { type nat hook prerouting priority dstnat; fib daddr type local jump hostports }
    chain output      { type nat hook output priority -100;       fib daddr type local jump hostports }
    chain postrouting { type nat hook postrouting priority srcnat; ip saddr . ip daddr @hairpin masquerade }

Why each piece:
  - DNAT in *prerouting* catches packets arriving from elsewhere (another node, a client); in
    *output* it catches connections the node itself opens. `fib daddr type local` limits both to
    packets addressed to one of the node's own addresses. (nft 1.0.6 refuses the name `dstnat` on
    the output hook, so the output chain says -100, which is the same number.)
  - One rule looks a packet up in a verdict map instead of one rule per port: the cost stays the
    same with many pods, and adding a pod is adding an element (and its small chain), not rewriting
    rules. (A map straight to "address . port" for `dnat` would be shorter, but nft 1.0.6 crashes
    on that statement in JSON; the verdict map with one chain per mapping is what kube-proxy's
    nftables mode does anyway.)
  - Hairpin: when a pod connects to its *own* hostPort, DNAT sends the packet back to the pod with
    the pod's own source address; the pod would answer itself directly and the connection breaks.
    Masquerading (pod → pod) traffic makes the reply go back through the node, where conntrack
    undoes both translations (SNAT for this is the `snat` option, on by default).

A hostPort another pod already maps is refused (error 100) instead of silently shadowed: the map
cannot hold the same key twice. A mapping's chain is named after a hash of (attachment, mapping,
pod address), so DEL can remove exactly its own element and chain — the add-then-delete transaction
of network/nft.py fails, and changes nothing, if the key leads to another pod's chain.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
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
from network.errors import NftError

TABLE = "nodeagent_hostport"
FAMILY = "ip"
PROTOCOLS = ("tcp", "udp", "sctp")


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


def _pod_ip(prev: Result | None) -> ipaddress.IPv4Address | None:
    if prev is None:
        return None
    for ip in prev.sandbox_ips() or list(prev.ips):
        if ip.address.version == 4:
            return ip.address.ip
    return None


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
    return [
        {"add": N.table(FAMILY, TABLE)},
        {"add": N.map_(FAMILY, TABLE, "hostports", proto_port, "verdict")},
        {"add": N.map_(FAMILY, TABLE, "hostip_hostports", ["ipv4_addr", *proto_port], "verdict")},
        {"add": N.set_(FAMILY, TABLE, "hairpin", ["ipv4_addr", "ipv4_addr"])},
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
            N.match({"concat": [N.payload("ip", "saddr"), N.payload("ip", "daddr")]}, "@hairpin"),
            {"masquerade": None}])},
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


def _mapping_cmds(m: PortMapping, pod_ip, owner: str) -> list[dict]:
    chain = chain_name(owner, m, pod_ip)
    return [
        {"add": N.chain(FAMILY, TABLE, chain)},
        {"flush": N.chain(FAMILY, TABLE, chain)},
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
    pod_ip = _pod_ip(prev)
    if pod_ip is None:
        raise CNIError(E.INVALID_NETWORK_CONFIG, "prevResult has no IPv4 address for the pod")
    owner = attachment(args.container_id, args.ifname)
    cmds = []
    for m in mappings:
        cmds += _mapping_cmds(m, pod_ip, owner)
    if args.config.get("snat", True):
        cmds.append({"add": N.elements(FAMILY, TABLE, "hairpin", [
            {"elem": {"val": {"concat": [str(pod_ip), str(pod_ip)]}, "comment": owner}}])})
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
    return prev.with_version(args.cni_version)


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
    try:
        nft.run([{"delete": N.elements(FAMILY, TABLE, "hairpin", [{"concat": [str(pod_ip), str(pod_ip)]}])}],
                "remove hairpin masquerade")
    except NftError as e:
        if e.errno != errno.ENOENT:
            raise
    return changes


def _remove_owned_by(nft: N.Nft, is_stale) -> list[Change]:
    """Remove every element (and its chain) whose owner comment `is_stale`, then orphan chains."""
    changes = []
    for name, parts, target, owner in _elements_of(nft):
        if not is_stale(owner):
            continue
        if target:
            done = _delete_mapping(nft, name, parts, target)
        else:
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
    present = {(name, tuple(parts), target) for name, parts, target, _ in _elements_of(ctx.nft())}
    for m in mappings:
        if (m.map_name, tuple(m.key()["concat"]), chain_name(owner, m, pod_ip)) not in present:
            raise CNIError(E.INTERNAL, f"hostPort {m.shown()} -> {pod_ip}:{m.container_port} is not mapped")


def cmd_gc(args: CmdArgs, ctx: PluginContext) -> None:
    from cni.plugins.hostlocal import valid_attachments

    valid = {attachment(c, i) for c, i in valid_attachments(args.config)}
    ctx.changes.extend(_remove_owned_by(ctx.nft(), lambda o: bool(o) and o not in valid))


def cmd_status(args: CmdArgs, ctx: PluginContext) -> None:
    if not ctx.nft().available():
        raise CNIError(E.PLUGIN_NOT_AVAILABLE, "nft not found", "hostPort needs the nftables package")


PLUGIN = Plugin(name="nodeagent-portmap",
                about="nodeagent-portmap: hostPort DNAT (prerouting and output) and hairpin SNAT via nftables",
                add=cmd_add, delete=cmd_del, check=cmd_check, gc=cmd_gc, status=cmd_status)


def main() -> None:
    skel_main(PLUGIN)
