"""`nodeagent doctor`: can this machine be a node? (checks in nodeagent/doctor/)"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check that this machine can be a node",
                       description="Check kernel features, cgroups, networking and tools a node "
                                   "needs; exit 1 if a required one is missing.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--state-dir", default="/var/lib/nodeagent",
                   help="where images and containers will live (for the disk check)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nodeagent.doctor import DoctorEnv, run_checks
    from nodeagent.doctor.report import exit_status, to_json, to_table

    findings = run_checks(DoctorEnv(state_dir=Path(args.state_dir)))
    print(to_json(findings) if args.json else to_table(findings))
    return exit_status(findings)
