#!/usr/bin/env python3
"""Pod start latency: a pod created through the API → Running, as a watch sees it.

Ours: 100 pods (one busybox container each, image present, imagePullPolicy Never) created through
the API at 5 per second on an all-in-one `nodeagent up` node in a network namespace of its own;
each pod's latency is from its create call to the watch event that shows phase Running — which
includes the scheduler's binding, the agent seeing the pod, the pod's network (CNI), the
container's creation and start, and the status write. Target: p50 <= 150 ms, p99 <= 500 ms.

Peer, in the same run: Debian's `podman play kube` of the same pod spec, one pod per call
(podman returns once the pod runs), in a scratch network namespace; the ratio compares medians.
Podman has no API server, scheduler or status write to go through, so the comparison is of what a
user waits for, not of equal work.

Usage (root, from the repository):  .venv/bin/python bench/pod_start.py [--pods 100] [--rate 5]
                                                                       [--peer-pods 20]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _node import Podman, fmt_ms, run_driver, start_node, stats


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=100)
    ap.add_argument("--rate", type=float, default=5.0)
    ap.add_argument("--peer-pods", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="na-bench-") as tmp:
        base = Path(tmp)
        node = start_node(base / "ours", "podstart")
        try:
            run_driver(node, "create", "3", "0", "warm-")        # the first pod pays for warm-up
            run_driver(node, "delete", "warm-")
            res = run_driver(node, "create", str(args.pods), str(args.rate), "p-")
            run_driver(node, "delete", "p-")
        finally:
            node.down()
        ours = stats(res["latencies"])
        print(f"nodeagent  create→Running  {fmt_ms(ours)}   running {res['running']}/{res['count']}")
        peer_s = None
        why = Podman.available()
        if why:
            print(f"podman     (not measured: {why})")
        else:
            podman = Podman(base / "podman")
            try:
                podman.setup(base / "ours" / "oci")
                podman.play("warm")
                peer = [podman.play(f"p{i}") for i in range(args.peer_pods)]
            finally:
                podman.teardown()
            peer_s = stats(peer)
            print(f"podman     play kube       {fmt_ms(peer_s)}")
        if peer_s and ours.get("n"):
            print(f"ratio ours/podman: median {ours['median'] / peer_s['median']:.2f}   "
                  f"p99 {ours['p99'] / peer_s['p99']:.2f}")


if __name__ == "__main__":
    main()
