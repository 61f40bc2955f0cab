"""`nodeagent net`: look at a pod's network, and set up the node's side of the cluster network.

    nodeagent net show POD [--explain]          # POD: a netns path or a container ID
    nodeagent net setup --netns P --id C [--port 8080:80] [--explain]   # = `cni add`, explained
    nodeagent net teardown --netns P --id C
    nodeagent net node-ip [--node-ip IP | --node-interface IF | --cluster-network CIDR]
    nodeagent net nodes --mode host-gw|vxlan --self NAME --node NAME,IP,PODCIDR ... [--explain]
    nodeagent net down [--bridge cni0]          # remove the node's pod network altogether
    nodeagent net netns add|del PATH            # namespace handles, as `ip netns add` makes them
"""

from __future__ import annotations

import argparse
import sys

from nodeagent.commands import cni as cnicmd


def _node_ip_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--node-ip", help="this node's IP (must be one of its addresses)")
    p.add_argument("--node-interface", help="take the node IP from this interface")
    p.add_argument("--cluster-network", help="take the node IP inside this CIDR (the nodes' network)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("net", help="inspect pod networking; set up the node's cross-node routes",
                       description="Show a pod's network as the kernel sees it, set one up with an "
                                   "explanation, choose the node IP, reconcile routes to other nodes.")
    cmds = p.add_subparsers(dest="net_command", metavar="COMMAND", required=True)

    s = cmds.add_parser("show", help="a pod's namespace, interfaces, veth peer, routes, nftables rules")
    s.add_argument("pod", help="network namespace path, or container ID (looked up in the cache)")
    s.add_argument("--cache-dir", default="/var/lib/cni")
    s.add_argument("--explain", action="store_true", help="say what each part is for")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=run_show)

    for name, func in (("setup", run_setup), ("teardown", run_teardown)):
        c = cmds.add_parser(name, help=f"{name} a pod's network ({'cni add' if name == 'setup' else 'cni del'})")
        cnicmd._common(c)
        cnicmd._attachment(c)
        if name == "setup":
            c.add_argument("--port", action="append", default=[], metavar="HOST:CONTAINER[/PROTO]")
            c.add_argument("--explain", action="store_true", help="why each change, and the command for it")
        c.set_defaults(func=func)

    n = cmds.add_parser("node-ip", help="which address of this node the others should use, and why")
    _node_ip_flags(n)
    n.set_defaults(func=run_node_ip)

    r = cmds.add_parser("nodes", help="reconcile routes to the other nodes' pod networks")
    r.add_argument("--mode", choices=["host-gw", "vxlan"], required=True)
    r.add_argument("--self", required=True, dest="self_name", help="this node's name in the list")
    r.add_argument("--node", action="append", default=[], metavar="NAME,IP,PODCIDR",
                   help="a node of the cluster (this one included); repeatable")
    r.add_argument("--mtu", type=int, help="vxlan device MTU (default: the underlay's minus 50)")
    r.add_argument("--down", action="store_true", help="remove all cross-node routes and the VXLAN device")
    r.add_argument("--explain", action="store_true")
    _node_ip_flags(r)
    r.set_defaults(func=run_nodes)

    d = cmds.add_parser("down", help="remove the node's pod network: bridge, nftables tables, "
                                     "cross-node routes, VXLAN device (tear pods down first)")
    d.add_argument("--bridge", default="cni0")
    d.set_defaults(func=run_down)

    h = cmds.add_parser("netns", help="create or delete a network namespace handle")
    h.add_argument("action", choices=["add", "del"])
    h.add_argument("path", help="e.g. /run/netns/pod1")
    h.set_defaults(func=run_netns)


def run_show(args) -> int:
    from cni.podview import gather, render, to_json
    from network.netns import ForkAccess
    from nodeagent.errors import AgentError
    from runtime.sys import real

    try:
        view = gather(args.pod, args.cache_dir, ForkAccess(real()))
    except LookupError as e:
        raise AgentError(str(e)) from e
    print(to_json(view) if args.json else render(view, args.explain))
    return 0


def run_setup(args) -> int:
    return cnicmd.run_add(args)


def run_teardown(args) -> int:
    return cnicmd.run_del(args)


def _choose(ipr, args):
    from network.nodeip import choose_node_ip, host_addresses

    return choose_node_ip(host_addresses(ipr), node_ip=args.node_ip, interface=args.node_interface,
                          cluster_network=args.cluster_network)


def run_node_ip(args) -> int:
    from network.rtnl import node_session

    with node_session() as ipr:
        chosen = _choose(ipr, args)
    print(f"{chosen.ip}  (interface {chosen.interface}: {chosen.reason})")
    return 0


def run_nodes(args) -> int:
    from network.changes import explain
    from network.crossnode import Node, reconcile, teardown
    from network.rtnl import node_session
    from nodeagent.errors import AgentError

    with node_session() as ipr:
        if args.down:
            changes = teardown(ipr)
        else:
            nodes = [Node.parse(t) for t in args.node]
            me = next((n for n in nodes if n.name == args.self_name), None)
            if me is None:
                raise AgentError(f"--self {args.self_name!r} is not in the --node list")
            chosen = _choose(ipr, args)
            if chosen.ip != me.ip:
                raise AgentError(f"the node list gives {me.name} the IP {me.ip}, but this node's IP is "
                                 f"{chosen.ip} ({chosen.reason})")
            changes = reconcile(ipr, args.mode, me, nodes, underlay=chosen.interface, mtu=args.mtu)
    print(explain(changes, verbose=args.explain))
    return 0


def run_down(args) -> int:
    from cni.podnet import teardown_node
    from network.changes import explain

    print(explain(teardown_node(args.bridge), verbose=False))
    return 0


def run_netns(args) -> int:
    from network.changes import explain
    from network.netns import ForkAccess, create_netns, delete_netns
    from runtime.sys import real

    s = real()
    changes = create_netns(args.path, ForkAccess(s), s) if args.action == "add" else delete_netns(args.path, s)
    print(explain(changes, verbose=False), file=sys.stderr)
    return 0
