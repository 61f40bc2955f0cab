"""`python -m controlplane.scheduler`: the scheduler as its own process, like kube-scheduler.

    python -m controlplane.scheduler --kubeconfig admin.kubeconfig [--scheduler-name NAME]
                                     [--leader-elect=false] [-v]

Runs until SIGTERM/SIGINT; on a clean stop it releases its Lease so another replica takes over
at once. Tests and bench/scheduler.py start it this way against a `nodeagent server`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys

from apiclient import ApiClient, ApiError, load_kubeconfig
from controlplane.scheduler import run_scheduler


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m controlplane.scheduler")
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--scheduler-name", default="default-scheduler")
    ap.add_argument("--leader-elect", default="true", choices=["true", "false"])
    ap.add_argument("--identity", default=None, help="leader election identity (default: host_uuid)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # The scheduler holds every pod and node as long-lived dicts (informer caches, PodInfo.raw)
    # and keeps adding them. With the default thresholds (a young collection every 700
    # allocations) the cyclic collector walks them over and over: bench/scheduler.py measured
    # ~1.5 s of a 10 s run in GC at 1,000 nodes, with full collections pausing up to 0.75 s.
    # Pod dicts hold no reference cycles (refcounting frees them), so collecting rarely only
    # delays the little cyclic garbage asyncio and aiohttp make. This is a decision for the
    # whole process, hence here and not in run_scheduler.
    gc.set_threshold(50_000, 20, 100)

    async def run() -> None:
        api = ApiClient(load_kubeconfig(args.kubeconfig), user_agent=args.scheduler_name)
        task = asyncio.ensure_future(run_scheduler(api, name=args.scheduler_name,
                                                   leader_elect=args.leader_elect == "true",
                                                   identity=args.identity))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass
        finally:
            await api.close()

    try:
        asyncio.run(run())
    except ApiError as e:
        print(f"scheduler: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
