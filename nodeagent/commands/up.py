"""`nodeagent up`: start an all-in-one node — API server, scheduler, controllers and the node agent
in one process (`nodeagent down` stops it and leaves nothing behind).

    nodeagent up [-d] [--data-dir /var/lib/nodeagent] [--listen 127.0.0.1:6443] [--netns NAME]
    nodeagent down [--data-dir /var/lib/nodeagent]

`up` runs in the foreground (what a systemd unit wants); `-d` starts the same command in the
background (its own session, output to <data-dir>/nodeagent.log), waits until the node is Ready
and prints the two lines a person needs. Running `up -d` again while it runs just says so.

`--netns NAME` runs the whole node inside the network namespace /run/netns/NAME (made if missing,
with its `lo` up), the way tests and several nodes on one machine use it: the node's bridge, pod
routes and nftables rules are then that namespace's, never the machine's. It is entered the way
`nsenter --net` does, by re-executing this command under nsenter before anything else runs — so
no thread of ours ever calls setns.

`down` stops the process (SIGTERM, then SIGKILL after a grace period), then removes what the node
made on the machine: every pod sandbox (containers, network namespaces, IPs, veths, cgroups,
mounts), the node's CNI bridge and nftables table, and the network namespace `up` made. A plain
SIGTERM to `up` (a systemd restart) leaves pods running instead, to be adopted on the next start —
as the kubelet does.
"""

from __future__ import annotations

import argparse
import os
import sys

DEFAULT_DATA_DIR = "/var/lib/nodeagent"
PID_FILE = "nodeagent.pid"
LOG_FILE = "nodeagent.log"
NETNS_FILE = "netns"          # the netns `up` made (so that `down` removes only that one)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="start an all-in-one node (control plane + agent)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("-d", "--detach", action="store_true",
                   help="run in the background; return when the node is Ready")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                   help="everything the node keeps: control-plane/ (state.db, pki), agent/, the log")
    p.add_argument("--listen", default="127.0.0.1:6443", help="HOST:PORT of the API server")
    p.add_argument("--node-name", help="the Node's name (default: this machine's hostname)")
    p.add_argument("--node-ip", help="the node's InternalIP (default: chosen from the interfaces)")
    p.add_argument("--pod-cidr", help="this node's pod range (default: given by the node IPAM controller)")
    p.add_argument("--cluster-cidr", default="10.244.0.0/16", help="the whole cluster's pod range")
    p.add_argument("--service-cluster-ip-range", default="10.96.0.0/12")
    p.add_argument("--controllers", default="*", help="controllers to run (`*`, `*,-name`, `a,b`)")
    p.add_argument("--no-scheduler", action="store_true", help="do not run the scheduler")
    from nodeagent.commands.agent import add_eviction_flags, add_image_gc_flags
    add_image_gc_flags(p)
    add_eviction_flags(p)
    p.add_argument("--netns", metavar="NAME|PATH",
                   help="run the node inside this network namespace (made if missing)")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="with -d: how long to wait for the node to be Ready (seconds)")
    p.set_defaults(func=up)


# --- up ---------------------------------------------------------------------------------------------
def up(args: argparse.Namespace) -> int:
    from nodeagent import allinone
    from nodeagent.commands.agent import eviction_config, image_gc_policy
    from nodeagent.errors import AgentError

    if os.geteuid() != 0:
        raise AgentError("`nodeagent up` needs root: it builds namespaces, cgroups and the pod network")
    data_dir = os.path.abspath(args.data_dir)
    config = allinone.NodeConfig(
        data_dir=data_dir, listen=args.listen, node_name=args.node_name, node_ip=args.node_ip,
        pod_cidr=args.pod_cidr, cluster_cidr=args.cluster_cidr,
        service_cidr=args.service_cluster_ip_range, controllers=args.controllers,
        scheduler=not args.no_scheduler, image_gc=image_gc_policy(args),
        eviction=eviction_config(args))
    try:
        config.components().check()          # a bad flag is one line, before anything starts
    except ValueError as e:
        raise AgentError(str(e)) from None
    running = allinone.running_pid(data_dir)
    if running is not None:
        if not args.detach:
            raise AgentError(f"a node is already running from {data_dir} (pid {running}); "
                             f"`nodeagent down --data-dir {data_dir}` stops it")
        print(f"nodeagent: already running from {data_dir} (pid {running})", file=sys.stderr)
        allinone.wait_ready(data_dir, running, args.timeout)
        _print_next_steps(data_dir)
        return 0
    if args.netns:
        _enter_netns(args, data_dir)         # re-executes under nsenter; returns when inside
    if args.detach:
        pid = allinone.start_detached(_child_argv(args), data_dir, os.path.join(data_dir, LOG_FILE))
        allinone.wait_ready(data_dir, pid, args.timeout)
        _print_next_steps(data_dir)
        return 0
    return allinone.run(config)


def _child_argv(args: argparse.Namespace) -> list[str]:
    """The same command line without -d (and without --netns: the child inherits the namespace)."""
    argv, skip = [], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
            continue
        if a in ("-d", "--detach"):
            continue
        if a == "--netns":
            skip = True
            continue
        if a.startswith("--netns="):
            continue
        argv.append(a)
    return [sys.executable, "-m", "nodeagent", *argv]


def _enter_netns(args: argparse.Namespace, data_dir: str) -> None:
    """Re-execute this command inside the namespace (nsenter --net), unless we are in it already."""
    import subprocess

    from network.netns import namespace_id
    from nodeagent.errors import AgentError

    path = args.netns if "/" in args.netns else f"/run/netns/{args.netns}"
    if namespace_id(path) is not None and namespace_id(path) == namespace_id("/proc/self/ns/net"):
        return
    if namespace_id(path) is None:
        if "/" in args.netns:
            raise AgentError(f"--netns {args.netns}: not a network namespace")
        made = subprocess.run(["ip", "netns", "add", args.netns], capture_output=True, text=True)
        if made.returncode != 0:
            raise AgentError(f"--netns {args.netns}: ip netns add: {made.stderr.strip()}")
        os.makedirs(data_dir, exist_ok=True)
        with open(os.path.join(data_dir, NETNS_FILE), "w") as f:
            f.write(path + "\n")
    # A fresh namespace has `lo` down: the API server listens on loopback.
    subprocess.run(["nsenter", f"--net={path}", "ip", "link", "set", "lo", "up"], check=False)
    argv = ["nsenter", f"--net={path}", sys.executable, "-m", "nodeagent", *sys.argv[1:]]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp("nsenter", argv)


def _print_next_steps(data_dir: str) -> None:
    kubeconfig = os.path.join(data_dir, "admin.kubeconfig")
    print(f"export KUBECONFIG={kubeconfig}")
    print("kubectl run web --image=busybox:1.36 -- httpd -f -p 8080   # then: kubectl get pods -o wide")
