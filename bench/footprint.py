#!/usr/bin/env python3
"""Footprint of an idle all-in-one node: `nodeagent up` (API server, scheduler, controllers, agent)
with no pods, all its processes together (the node process and every process it started: the
runtime's zygote and spare workers, the namespace helper), RSS and PSS. PSS divides shared pages
among the processes sharing them, so it is what the node really costs; RSS counts them in each.

Target: <= 150 MiB. For scale: k3s documents ~1.6 GB for a server and ~275 MB for an agent.

Usage (root, from the repository):  .venv/bin/python bench/footprint.py [--idle 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import psutil

from _node import pss_rss, start_node


def node_processes(data_dir: Path) -> list[int]:
    """The node process, its children, and the processes started for it that detached (the
    runtime's zygote and its spare workers are init's children: found by the data dir in their
    command line)."""
    pid = int((data_dir / "nodeagent.pid").read_text().split()[0])
    root = psutil.Process(pid)
    pids = {pid} | {c.pid for c in root.children(recursive=True)}
    for p in psutil.process_iter(["cmdline"]):
        if any(str(data_dir) in a for a in p.info["cmdline"] or []):
            pids.add(p.pid)
    return sorted(pids)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=float, default=20.0, help="seconds to let the node settle")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="na-bench-") as tmp:
        node = start_node(Path(tmp), "footprint")
        try:
            time.sleep(args.idle)
            pids = node_processes(node.data)
            pss, rss = pss_rss(pids)
            cpu0 = sum(sum(psutil.Process(p).cpu_times()[:2]) for p in pids)
            time.sleep(10)
            cpu1 = sum(sum(psutil.Process(p).cpu_times()[:2]) for p in pids)
        finally:
            node.down()
    print(f"nodeagent up, idle: {len(pids)} processes   PSS {pss / 2**20:6.1f} MiB   "
          f"RSS {rss / 2**20:6.1f} MiB   CPU {100 * (cpu1 - cpu0) / 10:.1f}% of one core")
    print("target: PSS <= 150 MiB (k3s documents ~1.6 GB server + ~275 MB agent)")


if __name__ == "__main__":
    main()
