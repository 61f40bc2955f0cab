"""nodeagent-host-local: the IPAM plugin. Hands out addresses from configured ranges.

An IPAM plugin is a *delegated* plugin (SPEC.md section 4): the bridge plugin runs it with its own
environment and the whole network config on stdin, and gets back an abbreviated result — IPs,
routes, DNS, but no interfaces (IPAM makes no interface; the bridge plugin puts the address on one).

    ADD    reserve one address per range set for (CNI_CONTAINERID, CNI_IFNAME); a second ADD for the
           same pair is refused (the spec forbids duplicate allocation) and reserves nothing
    DEL    release whatever that pair holds; nothing held is success (DEL is idempotent)
    CHECK  the pair holds an address
    GC     release every address whose pair is not in cni.dev/valid-attachments
    STATUS error 50 when a range set has no free address left

CNI_ARGS "IP=10.244.1.9" asks for a specific address (the reference plugin's convention).
"""

from __future__ import annotations

import ipaddress

from cni.errors import PLUGIN_NOT_AVAILABLE, CNIError
from cni.ipam import ranges
from cni.ipam.store import Store
from cni.result import IPConfig, Result
from cni.skel import CmdArgs, Plugin, PluginContext
from cni.skel import main as skel_main


def _requested(args: CmdArgs) -> list:
    wanted = []
    ip_arg = args.cni_args().get("IP", "")
    runtime_ips = (args.config.get("runtimeConfig") or {}).get("ips") or []
    for text in [*filter(None, ip_arg.split(",")), *runtime_ips]:
        try:
            wanted.append(ipaddress.ip_interface(text).ip)
        except ValueError:
            raise CNIError(7, f"requested IP {text!r} is not an IP address") from None
    return wanted


def cmd_add(args: CmdArgs, ctx: PluginContext) -> Result:
    conf = ranges.parse(args.config)
    wanted = _requested(args)
    ips: list[IPConfig] = []
    with Store(conf.data_dir, conf.network) as store:
        try:
            for i, rset in enumerate(conf.range_sets):
                req = next((w for w in wanted if any(w in r for r in rset)), None)
                if req is not None:
                    wanted.remove(req)
                rng, ip = store.allocate(rset, i, args.container_id, args.ifname, req)
                ips.append(IPConfig(ipaddress.ip_interface(f"{ip}/{rng.subnet.prefixlen}"), rng.gateway))
            if wanted:
                raise CNIError(7, "failed to allocate all requested IPs: "
                                  + " ".join(str(w) for w in wanted), "not in any configured range")
        except BaseException:
            if ips:  # only what this call reserved: a refused duplicate must not free the original
                store.release(args.container_id, args.ifname)
            raise
    return Result(args.cni_version, ips=tuple(ips), routes=conf.routes)


def cmd_del(args: CmdArgs, ctx: PluginContext) -> None:
    conf = ranges.parse(args.config)
    with Store(conf.data_dir, conf.network) as store:
        store.release(args.container_id, args.ifname)


def cmd_check(args: CmdArgs, ctx: PluginContext) -> None:
    conf = ranges.parse(args.config)
    with Store(conf.data_dir, conf.network) as store:
        if not store.find(args.container_id, args.ifname):
            raise CNIError(999, f"no address allocated to container {args.container_id} ({args.ifname})",
                           f"nothing in {store.dir} names this attachment")


def valid_attachments(config: dict) -> set[tuple[str, str]]:
    raw = config.get("cni.dev/valid-attachments")
    if raw is None:
        raw = config.get("cni.dev/attachments")  # libcni also sends the name of an early spec draft
    if not isinstance(raw, list):
        raise CNIError(7, "GC needs \"cni.dev/valid-attachments\" (a list)")
    out = set()
    for i, a in enumerate(raw):
        if not isinstance(a, dict) or not a.get("containerID") or not a.get("ifname"):
            raise CNIError(7, f"cni.dev/valid-attachments[{i}] needs containerID and ifname")
        out.add((a["containerID"], a["ifname"]))
    return out


def cmd_gc(args: CmdArgs, ctx: PluginContext) -> None:
    conf = ranges.parse(args.config)
    valid = valid_attachments(args.config)
    with Store(conf.data_dir, conf.network) as store:
        store.gc(valid)


def cmd_status(args: CmdArgs, ctx: PluginContext) -> None:
    conf = ranges.parse(args.config)
    with Store(conf.data_dir, conf.network) as store:
        for rset in conf.range_sets:
            if store.free_count(rset) <= 0:
                raise CNIError(PLUGIN_NOT_AVAILABLE,
                               f"no free addresses in range set {', '.join(str(r) for r in rset)}")


PLUGIN = Plugin(name="nodeagent-host-local",
                about="nodeagent-host-local: IPAM from address ranges, one file per allocated IP",
                add=cmd_add, delete=cmd_del, check=cmd_check, gc=cmd_gc, status=cmd_status)


def main() -> None:
    skel_main(PLUGIN)
