"""`nodeagent cni`: install our CNI plugins and a network config; run CNI operations by hand.

    nodeagent cni install [--bin-dir /opt/cni/bin] [--conf-dir /etc/cni/net.d] --pod-cidr 10.244.1.0/24
    nodeagent cni add --netns /run/netns/p1 --id p1 [--port 8080:80/tcp] [--explain]
    nodeagent cni del --netns /run/netns/p1 --id p1
    nodeagent cni check|gc|status ...

`add`/`del` are what the agent does for a pod (loopback, then the configured chain; cni/podnet.py),
so a student can wire a namespace by hand and look at the result with `nodeagent net show`.
"""

from __future__ import annotations

import argparse
import json
import sys


def _common(p: argparse.ArgumentParser) -> None:
    from cni.install import DEFAULT_BIN_DIR, DEFAULT_CONF_DIR

    p.add_argument("--conf-dir", default=DEFAULT_CONF_DIR, help="network configs (default %(default)s)")
    p.add_argument("--bin-dir", action="append", help=f"plugin dir; repeatable (default {DEFAULT_BIN_DIR})")
    p.add_argument("--cache-dir", default="/var/lib/cni", help="results cache (default %(default)s)")
    p.add_argument("--network", help="network name (default: the first config in --conf-dir)")
    p.add_argument("--exec", dest="in_process", action="store_false",
                   help="run every plugin as its executable (default: ours in-process, the fast path)")


def _attachment(p: argparse.ArgumentParser) -> None:
    p.add_argument("--netns", required=True, help="the pod's network namespace (a path)")
    p.add_argument("--id", required=True, dest="container_id", help="container (sandbox) ID")
    p.add_argument("--ifname", default="eth0")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cni", help="install CNI plugins and configs; run CNI operations",
                       description="Install nodeagent's CNI plugins and a default network config, or "
                                   "run CNI ADD/DEL/CHECK/GC/STATUS against a network namespace.")
    cmds = p.add_subparsers(dest="cni_command", metavar="COMMAND", required=True)

    i = cmds.add_parser("install", help="write the plugins (and a .conflist with --pod-cidr)")
    i.add_argument("--bin-dir", default=None, help="where the plugins go (default /opt/cni/bin)")
    i.add_argument("--conf-dir", default=None, help="where the config goes (default /etc/cni/net.d)")
    i.add_argument("--pod-cidr", help="this node's pod subnet, e.g. 10.244.1.0/24 (writes the .conflist)")
    i.add_argument("--cluster-cidr", help="all pods' range, e.g. 10.244.0.0/16: never masqueraded")
    i.add_argument("--name", default="nodeagent", help="network name (default %(default)s)")
    i.add_argument("--bridge", default="cni0", help="bridge device (default %(default)s)")
    i.add_argument("--mtu", type=int, help="pod MTU (with --mode vxlan: the underlay's minus 50)")
    i.add_argument("--mode", choices=["host-gw", "vxlan"], default="host-gw",
                   help="cross-node mode, for the MTU (default %(default)s)")
    i.add_argument("--node-interface", help="with --mode vxlan and no --mtu: the interface the tunnel uses")
    i.add_argument("--data-dir", help="IPAM data dir (default /var/lib/cni/networks)")
    i.set_defaults(func=run_install)

    for name, helptext, func in (("add", "set up a pod's network (loopback + the configured chain)", run_add),
                                 ("del", "tear a pod's network down (idempotent)", run_del),
                                 ("check", "check a pod's network against its cached result", run_check)):
        c = cmds.add_parser(name, help=helptext)
        _common(c)
        _attachment(c)
        if name == "add":
            c.add_argument("--port", action="append", default=[], metavar="HOST:CONTAINER[/PROTO]",
                           help="a hostPort mapping; repeatable")
            c.add_argument("--explain", action="store_true", help="say why each change was made, and how by hand")
        c.set_defaults(func=func)
    g = cmds.add_parser("gc", help="remove attachments and plugin state not in the valid list")
    _common(g)
    g.add_argument("--valid", action="append", default=[], metavar="ID[/IFNAME]",
                   help="an attachment that is still valid; repeatable")
    g.set_defaults(func=run_gc)
    s = cmds.add_parser("status", help="can the network's plugins take ADDs? (CNI STATUS)")
    _common(s)
    s.set_defaults(func=run_status)


def pod_network(args):
    from cni.install import DEFAULT_BIN_DIR
    from cni.podnet import PodNetwork, PodNetworkConfig

    return PodNetwork(PodNetworkConfig(conf_dir=args.conf_dir, bin_dirs=tuple(args.bin_dir or [DEFAULT_BIN_DIR]),
                                       cache_dir=args.cache_dir, network=args.network,
                                       in_process=args.in_process))


def parse_port(text: str) -> dict:
    from nodeagent.errors import AgentError

    spec, _, proto = text.partition("/")
    host, sep, container = spec.partition(":")
    try:
        return {"hostPort": int(host), "containerPort": int(container if sep else host),
                "protocol": (proto or "tcp").lower()}
    except ValueError:
        raise AgentError(f"--port {text!r}: want HOST:CONTAINER[/tcp|udp|sctp]") from None


def run_install(args) -> int:
    from pathlib import Path

    from cni.install import (DEFAULT_BIN_DIR, DEFAULT_CONF_DIR, default_conflist, install_conflist,
                             install_plugins)
    from network.vxlan import OVERHEAD
    from nodeagent.errors import AgentError

    bin_dir, conf_dir = args.bin_dir or DEFAULT_BIN_DIR, args.conf_dir or DEFAULT_CONF_DIR
    try:
        for path in install_plugins(bin_dir):
            print(f"installed {path}")
        if not args.pod_cidr:
            print("no --pod-cidr: network config not written")
            return 0
        mtu = args.mtu
        if args.mode == "vxlan" and not mtu:
            if not args.node_interface:
                raise AgentError("--mode vxlan needs --mtu or --node-interface (the pod MTU is the "
                                 f"tunnel interface's minus {OVERHEAD})")
            mtu = int(Path(f"/sys/class/net/{args.node_interface}/mtu").read_text()) - OVERHEAD
        conf = default_conflist(args.pod_cidr, name=args.name, bridge=args.bridge,
                                cluster_cidr=args.cluster_cidr, mtu=mtu, data_dir=args.data_dir)
        print(f"wrote {install_conflist(conf_dir, conf)}")
    except (OSError, ValueError) as e:   # a directory we may not write, a bad CIDR
        raise AgentError(str(e)) from e
    return 0


def run_add(args) -> int:
    from network.changes import explain

    pn = pod_network(args)
    try:
        att = pn.setup(args.netns, args.container_id, args.ifname, [parse_port(p) for p in args.port])
    finally:
        pn.close()
    print(json.dumps(att.result.to_json(), indent=2))
    if args.explain or att.changes:
        print(explain(att.changes, verbose=args.explain), file=sys.stderr)
    return 0


def run_del(args) -> int:
    from network.changes import explain

    pn = pod_network(args)
    try:
        changes = pn.teardown(args.netns, args.container_id, args.ifname)
    finally:
        pn.close()
    print(explain(changes, verbose=False))
    return 0


def run_check(args) -> int:
    pn = pod_network(args)
    try:
        pn.check(args.netns, args.container_id, args.ifname)
    finally:
        pn.close()
    print(f"ok: {args.container_id} ({args.ifname}) matches its cached result")
    return 0


def run_gc(args) -> int:
    valid = [(v.partition("/")[0], v.partition("/")[2] or "eth0") for v in args.valid]
    pn = pod_network(args)
    try:
        pn.gc(valid)
    finally:
        pn.close()
    print(f"gc done; kept {len(valid)} attachment(s)")
    return 0


def run_status(args) -> int:
    pn = pod_network(args)
    try:
        pn.status()
    finally:
        pn.close()
    print(f"ok: network {pn.network().name!r} can take new pods")
    return 0
