"""`nodeagent agent`: join this machine to a cluster as a node — the node agent alone, talking to
an API server elsewhere (what `nodeagent up` runs in-process next to its own control plane).

    nodeagent agent --server https://192.168.56.10:6443 --token TOKEN --node-ip 192.168.56.11 \\
                    [--node-name N] [--ca-file ca.crt] [--pod-cidr 10.244.1.0/24]

The server's certificate is checked against --ca-file (the cluster CA, e.g. copied from the
server's <data-dir>/control-plane/pki/ca.crt); without one, <data-dir>/ca.crt is used if present.
--insecure-skip-tls-verify exists for labs only: the token would go to whoever answers.

The pod range is the Node's spec.podCIDR, as node IPAM assigns it (waited for briefly), or
--pod-cidr. SIGTERM stops the agent and leaves the pods running, to be adopted on the next start.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("agent", help="join this machine to a cluster as a node (the node agent)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--server", required=True, help="the API server's URL (https://HOST:6443)")
    p.add_argument("--token", required=True, help="a bearer token the API server accepts")
    p.add_argument("--node-ip", required=True, help="this node's InternalIP (an address of this machine)")
    p.add_argument("--node-name", help="the Node's name (default: this machine's hostname)")
    p.add_argument("--data-dir", default="/var/lib/nodeagent", help="the agent's state: agent/, cni/, images/")
    p.add_argument("--ca-file", help="the cluster CA certificate (PEM) to check the server with")
    p.add_argument("--insecure-skip-tls-verify", action="store_true",
                   help="do not check the server's certificate (labs only)")
    p.add_argument("--pod-cidr", help="this node's pod range (default: the Node's spec.podCIDR)")
    p.add_argument("--cluster-cidr", default="10.244.0.0/16", help="the whole cluster's pod range")
    p.add_argument("--cluster-dns", action="append", default=[],
                   help="the cluster DNS service IP for ClusterFirst pods (repeatable)")
    add_image_gc_flags(p)
    add_eviction_flags(p)
    p.set_defaults(func=run)


def add_image_gc_flags(p: argparse.ArgumentParser) -> None:
    """The kubelet's image GC flags (nodeagent/imagegc.py), shared with `nodeagent up`."""
    p.add_argument("--image-gc-high-threshold", type=int, default=85, metavar="PERCENT",
                   help="image filesystem usage that starts image GC (100: never)")
    p.add_argument("--image-gc-low-threshold", type=int, default=80, metavar="PERCENT",
                   help="image filesystem usage image GC brings it down to")
    p.add_argument("--minimum-image-ttl-duration", default="2m0s", metavar="DURATION",
                   help="how long an image is kept after it is first seen, unused (Go duration)")


def image_gc_policy(args: argparse.Namespace):
    from nodeagent.imagegc import ImageGCPolicy, parse_duration

    return ImageGCPolicy(args.image_gc_high_threshold, args.image_gc_low_threshold,
                         parse_duration(args.minimum_image_ttl_duration, "--minimum-image-ttl-duration"))


def add_eviction_flags(p: argparse.ArgumentParser) -> None:
    """The kubelet's eviction flags (nodeagent/eviction/), shared with `nodeagent up`. The map
    flags may be repeated; the first --eviction-hard replaces the default set."""
    signals = "memory.available, nodefs.available, nodefs.inodesFree, imagefs.available, " \
              "imagefs.inodesFree, pid.available"
    p.add_argument("--eviction-hard", action="append", metavar="SIGNAL<VALUE,...",
                   help="thresholds that evict at once (default memory.available<100Mi,"
                        "nodefs.available<10%%,nodefs.inodesFree<5%%,imagefs.available<15%%); "
                        f"a VALUE is a quantity or a percentage; signals: {signals}")
    p.add_argument("--eviction-soft", action="append", metavar="SIGNAL<VALUE,...",
                   help="thresholds that evict once met for their grace period")
    p.add_argument("--eviction-soft-grace-period", action="append", metavar="SIGNAL=DURATION,...",
                   help="how long each soft threshold must hold (like memory.available=1m30s)")
    p.add_argument("--eviction-minimum-reclaim", action="append", metavar="SIGNAL=VALUE,...",
                   help="how far above its threshold a signal must climb before pressure ends")
    p.add_argument("--eviction-max-pod-grace-period", type=int, default=0, metavar="SECONDS",
                   help="the longest grace period a soft eviction gives a pod (0: the pod's own)")
    p.add_argument("--eviction-pressure-transition-period", default="5m0s", metavar="DURATION",
                   help="how long a pressure condition stays True after its signal recovers")


def eviction_config(args: argparse.Namespace):
    from nodeagent.eviction import parse_config

    return parse_config(args.eviction_hard, args.eviction_soft, args.eviction_soft_grace_period,
                        args.eviction_minimum_reclaim, args.eviction_max_pod_grace_period,
                        args.eviction_pressure_transition_period)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import os
    import signal
    from pathlib import Path

    from apiclient import ApiClient, ClientConfig
    from nodeagent.errors import AgentError
    from nodeagent.node import AgentConfig, run_node_agent

    if os.geteuid() != 0:
        raise AgentError("`nodeagent agent` needs root: it builds namespaces, cgroups and the pod network")
    if not args.server.startswith(("https://", "http://")):
        raise AgentError(f"--server {args.server!r}: expected a URL such as https://HOST:6443")
    ca_path = args.ca_file or (Path(args.data_dir) / "ca.crt")
    ca_pem = None
    if not args.insecure_skip_tls_verify and args.server.startswith("https://"):
        try:
            ca_pem = Path(ca_path).read_bytes()
        except OSError as e:
            raise AgentError(f"--ca-file {ca_path}: {e.strerror}; give the cluster CA "
                             "(or --insecure-skip-tls-verify in a lab)") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = AgentConfig(data_dir=os.path.abspath(args.data_dir), node_name=args.node_name,
                         node_ip=args.node_ip, pod_cidr=args.pod_cidr, cluster_cidr=args.cluster_cidr,
                         cluster_dns=tuple(args.cluster_dns), wait_for_pod_cidr=30.0,
                         cluster_ca=str(ca_path) if ca_pem else None, image_gc=image_gc_policy(args),
                         eviction=eviction_config(args))

    async def main() -> None:
        api = ApiClient(ClientConfig(server=args.server, ca_pem=ca_pem, token=args.token,
                                     insecure_skip_verify=args.insecure_skip_tls_verify))
        agent = asyncio.create_task(run_node_agent(config, api))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, agent.cancel)
        try:
            await agent
        except asyncio.CancelledError:
            pass
        finally:
            await api.close()

    asyncio.run(main())
    return 0
