"""`nodeagent down`: stop the all-in-one node of `nodeagent up` and remove what it made on the
machine — pods (containers, network namespaces, IPs, veths, cgroups, mounts), the node's CNI bridge
and nftables table, and the network namespace `up --netns` made. See nodeagent/allinone.py."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("down", help="stop the all-in-one node and remove what it made",
                       description=__doc__.split("\n\n")[0])
    d.add_argument("--data-dir", default="/var/lib/nodeagent")
    d.add_argument("--timeout", type=float, default=60.0,
                   help="seconds to wait for the node process to exit before SIGKILL")
    d.set_defaults(func=down)


def down(args: argparse.Namespace) -> int:
    import os

    from nodeagent import allinone

    for line in allinone.stop_and_clean(os.path.abspath(args.data_dir), args.timeout):
        print(line)
    return 0
