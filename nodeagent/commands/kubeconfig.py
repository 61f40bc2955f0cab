"""`nodeagent kubeconfig`: print or write an admin kubeconfig for a control plane's data dir."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("kubeconfig", help="write an admin kubeconfig for kubectl",
                       description="Write a kubeconfig with the cluster CA and the admin token "
                                   "of a `nodeagent server` data directory.")
    p.add_argument("--data-dir", default="/var/lib/nodeagent/control-plane")
    p.add_argument("--server", default="https://127.0.0.1:6443", help="the API server URL")
    p.add_argument("-o", "--output", help="file to write (mode 0600); default: print to stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from controlplane.apiserver import kubeconfig
    from nodeagent.errors import AgentError

    pki = Path(args.data_dir) / "pki"
    ca, token = pki / "ca.crt", pki / "admin.token"
    for f in (ca, token):
        if not f.exists():
            raise AgentError(f"{f}: not found (has `nodeagent server --data-dir {args.data_dir}` "
                             f"run once?)")
    if args.output:
        from controlplane.apiserver.certs import PKI
        kubeconfig.write(Path(args.output), args.server,
                         PKI(ca, pki / "ca.key", pki / "apiserver.crt", pki / "apiserver.key", token))
        print(f"wrote {args.output}")
    else:
        print(kubeconfig.render(args.server, ca.read_bytes(), token.read_text().strip()), end="")
    return 0
