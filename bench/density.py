#!/usr/bin/env python3
"""Density: 110 pods (the default pod limit of a node) created at once on one node.

Figures:
- time from the first create until all 110 are Running (target <= 30 s);
- memory overhead per pod: the PSS of the processes a pod costs besides its own program — our
  per-container supervisors (a pod's namespaces are pinned by bind mounts, no process) — divided
  by the pod count (target <= 3 MiB); peer in the same run: podman's infra (pause) container and
  conmon per pod, for the same pods;
- the node process's CPU while idle with 110 pods (target <= 2% of one core). It is the whole
  all-in-one process (API server and controllers included), so an upper bound for the agent.

Usage (root, from the repository):  .venv/bin/python bench/density.py [--pods 110] [--peer-pods 110]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import psutil

from _node import Podman, pod_overhead_pids, pss_rss, run_driver, start_node


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=110)
    ap.add_argument("--peer-pods", type=int, default=110)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="na-bench-") as tmp:
        base = Path(tmp)
        node = start_node(base / "ours", "density")
        try:
            res = run_driver(node, "create", str(args.pods), "0", "d-")
            time.sleep(5)                                   # let start-up pages settle
            overhead = pod_overhead_pids(under=base)
            pss, _ = pss_rss(overhead)
            pid = int((node.data / "nodeagent.pid").read_text().split()[0])
            proc = psutil.Process(pid)
            c0 = sum(proc.cpu_times()[:2])
            time.sleep(20)
            idle_cpu = 100 * (sum(proc.cpu_times()[:2]) - c0) / 20
            run_driver(node, "delete", "d-")
        finally:
            node.down()
        after = res["all_running_after"]
        print(f"nodeagent  {res['running']}/{args.pods} Running after "
              f"{after:.1f} s" if after is not None else
              f"nodeagent  only {res['running']}/{args.pods} Running")
        print(f"nodeagent  per-pod overhead (supervisors' PSS / pods): "
              f"{pss / max(1, args.pods) / 2**20:.2f} MiB   ({len(overhead)} processes)")
        print(f"nodeagent  node process CPU, idle with {args.pods} pods: {idle_cpu:.2f}% of one core")
        why = Podman.available()
        if why:
            print(f"podman     (not measured: {why})")
            return
        podman = Podman(base / "podman")
        try:
            podman.setup(base / "ours" / "oci")
            for i in range(args.peer_pods):
                podman.play(f"d{i}")
            time.sleep(5)
            conmons = [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "conmon"]
            infra = [p.pid for p in psutil.process_iter(["name"])
                     if p.info["name"] in ("catatonit", "pause")]
            ppss, _ = pss_rss(conmons + infra)
        finally:
            podman.teardown()
        print(f"podman     per-pod overhead (conmon + infra PSS / pods): "
              f"{ppss / max(1, args.peer_pods) / 2**20:.2f} MiB   ({len(conmons)} conmon, {len(infra)} infra)")
        print(f"ratio ours/podman: {pss / max(1, args.pods) / max(1, ppss / max(1, args.peer_pods)):.2f}")


if __name__ == "__main__":
    main()
