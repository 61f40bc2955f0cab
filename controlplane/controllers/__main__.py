"""`python -m controlplane.controllers --kubeconfig K`: the controllers as their own process, like
kube-controller-manager beside a kube-apiserver (several replicas elect one leader). Flags are
kube-controller-manager's names. `nodeagent server`/`up` run the same code in-process instead."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from apiclient import ApiClient, ApiError, load_kubeconfig

from controlplane.controllers.base import ControllerOptions
from controlplane.controllers.manager import run_controllers


def parse(argv: list[str]) -> tuple[argparse.Namespace, ControllerOptions]:
    p = argparse.ArgumentParser(prog="python -m controlplane.controllers")
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--controllers", default="*", help="`*`, `*,-name`, `a,b`")
    p.add_argument("--identity", default="", help="leader election identity (default host_uuid)")
    p.add_argument("--leader-elect", default="true", choices=["true", "false"])
    p.add_argument("--leader-elect-lease-duration", type=float, default=15.0)
    p.add_argument("--leader-elect-renew-deadline", type=float, default=10.0)
    p.add_argument("--leader-elect-retry-period", type=float, default=2.0)
    p.add_argument("--node-monitor-grace-period", type=float, default=40.0)
    p.add_argument("--node-monitor-period", type=float, default=5.0)
    p.add_argument("--node-eviction-rate", type=float, default=0.1)
    p.add_argument("--cluster-cidr", default="10.244.0.0/16")
    p.add_argument("--node-cidr-mask-size", type=int, default=24)
    p.add_argument("--allocate-node-cidrs", default="true", choices=["true", "false"])
    p.add_argument("--terminated-pod-gc-threshold", type=int, default=12500)
    p.add_argument("--podgc-period", type=float, default=20.0)
    p.add_argument("--job-backoff-base", type=float, default=10.0,
                   help="seconds before a failed Job pod is replaced (doubling per failure)")
    a = p.parse_args(argv)
    return a, ControllerOptions(
        identity=a.identity, leader_elect=a.leader_elect == "true",
        lease_duration=a.leader_elect_lease_duration, renew_deadline=a.leader_elect_renew_deadline,
        retry_period=a.leader_elect_retry_period, node_monitor_grace_period=a.node_monitor_grace_period,
        node_monitor_period=a.node_monitor_period, node_eviction_rate=a.node_eviction_rate,
        cluster_cidr=a.cluster_cidr, node_cidr_mask_size=a.node_cidr_mask_size,
        allocate_node_cidrs=a.allocate_node_cidrs == "true",
        terminated_pod_gc_threshold=a.terminated_pod_gc_threshold, podgc_period=a.podgc_period,
        job_backoff_base=a.job_backoff_base)


def main(argv: list[str] | None = None) -> int:
    try:
        args, options = parse(sys.argv[1:] if argv is None else argv)
    except ValueError as e:
        print(f"controllers: {e}", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    items = [s.strip() for s in args.controllers.split(",") if s.strip()]
    enabled = None if items == ["*"] else set(items)

    async def run() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        async with ApiClient(load_kubeconfig(args.kubeconfig), user_agent="kube-controller-manager") as api:
            try:
                await run_controllers(api, enabled, options)
            except asyncio.CancelledError:
                pass

    try:
        asyncio.run(run())
    except (ApiError, ValueError) as e:
        print(f"controllers: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
