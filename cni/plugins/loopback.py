"""nodeagent-loopback: bring up the pod's `lo`.

A new network namespace has a loopback device, but it is *down*: even 127.0.0.1 does not work until
somebody sets it up. Runtimes run this plugin for every pod (containerd does it on its own, outside
the configured chain); without it, a container that talks to itself over localhost fails.

ADD sets lo up and reports it (or passes a prevResult through unchanged, when chained); DEL sets it
down, and succeeds when the namespace is already gone.
"""

from __future__ import annotations

import ipaddress

from cni.errors import CNIError
from cni.result import Interface, IPConfig, Result
from cni.skel import CmdArgs, Plugin, PluginContext
from cni.skel import main as skel_main


def _where(args: CmdArgs) -> str:
    return f" in {args.netns}"


def cmd_add(args: CmdArgs, ctx: PluginContext) -> Result:
    from network.addrs import list_addresses
    from network.links import get_link, set_up
    from network.rtnl import pod_session

    with pod_session(ctx.netns_access(), args.netns) as pod:
        lo = get_link(pod, "lo")
        if lo is None:
            raise CNIError(999, f"no loopback device in {args.netns}")
        ctx.changes.extend(set_up(pod, lo, _where(args)))
        addrs = [a for _, a in list_addresses(pod, lo)]
    for a in addrs:
        if not a.ip.is_loopback:
            raise CNIError(999, f"loopback interface has non-loopback address {a}")
    prev = args.prev_result()
    if prev is not None:
        return prev.with_version(args.cni_version)
    v4 = [a for a in addrs if a.version == 4][:1]
    v6 = [a for a in addrs if a.version == 6][:1]
    return Result(args.cni_version,
                  interfaces=(Interface("lo", "00:00:00:00:00:00", args.netns),),
                  ips=tuple(IPConfig(ipaddress.ip_interface(a), None, 0) for a in [*v4, *v6]))


def cmd_del(args: CmdArgs, ctx: PluginContext) -> None:
    if not args.netns:
        return
    from network.errors import NetnsGone
    from network.links import get_link, set_down
    from network.rtnl import pod_session

    try:
        with pod_session(ctx.netns_access(), args.netns) as pod:
            lo = get_link(pod, "lo")
            if lo is not None:
                ctx.changes.extend(set_down(pod, lo, _where(args)))
    except NetnsGone:
        pass  # the namespace, and its lo, are gone: nothing to undo


def cmd_check(args: CmdArgs, ctx: PluginContext) -> None:
    from network.links import get_link
    from network.rtnl import pod_session

    with pod_session(ctx.netns_access(), args.netns) as pod:
        lo = get_link(pod, "lo")
    if lo is None or not lo.up:
        raise CNIError(999, f"loopback in {args.netns} is not up")


PLUGIN = Plugin(name="nodeagent-loopback", about="nodeagent-loopback: sets up the pod's lo device",
                add=cmd_add, delete=cmd_del, check=cmd_check)


def main() -> None:
    skel_main(PLUGIN)
