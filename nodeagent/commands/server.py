"""`nodeagent server`: run the control plane — the API server, then the scheduler and the
controllers as its clients (controlplane/components.py), each leader-elected through a Lease so
that several `nodeagent server`s on one store share the work. `--no-scheduler` and
`--controllers` switch parts off, as kube-scheduler's and kube-controller-manager's flags do."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("server", help="run the control plane (API server)",
                       description="Run the Kubernetes API server on one SQLite file. On first "
                                   "start it creates a CA, a serving certificate and an admin "
                                   "token, and writes <data-dir>/admin.kubeconfig.")
    p.add_argument("--data-dir", default="/var/lib/nodeagent/control-plane",
                   help="state directory: state.db, pki/, admin.kubeconfig")
    p.add_argument("--listen", default="127.0.0.1:6443", help="HOST:PORT to serve HTTPS on")
    p.add_argument("--advertise-address", action="append", default=[],
                   help="an address clients use to reach this server (repeatable); it goes into "
                        "the certificate and the `kubernetes` service's endpoints")
    p.add_argument("--service-cluster-ip-range", default="10.96.0.0/12",
                   help="CIDR that Service ClusterIPs are allocated from")
    p.add_argument("--default-watch-cache-size", type=int, default=10000,
                   help="events kept in memory for watches to resume from; older resourceVersions "
                        "get 410 Gone")
    p.add_argument("--controllers", default="*",
                   help="controllers to run, kube-controller-manager's syntax: `*` all, `name` on, "
                        "`-name` off (comma-separated); `--controllers=` runs none")
    p.add_argument("--no-scheduler", action="store_true",
                   help="do not run the scheduler (pods then wait for another one)")
    p.add_argument("--cluster-cidr", default="10.244.0.0/16",
                   help="the pod range node IPAM hands each node a /24 of")
    p.add_argument("--insecure-http", action="store_true",
                   help="serve plain HTTP without authentication (tests and debugging only)")
    p.set_defaults(func=run)


def _listen(value: str) -> tuple[str, int]:
    from nodeagent.errors import AgentError
    host, _, port = value.rpartition(":")
    try:
        return host.strip("[]") or "127.0.0.1", int(port)
    except ValueError:
        raise AgentError(f"--listen: expected HOST:PORT, got {value!r}") from None


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    from pathlib import Path

    from controlplane import components
    from controlplane.apiserver.errors import APIError
    from controlplane.apiserver.server import APIServer, ServerConfig
    from controlplane.components import Components
    from controlplane.storage import StorageError
    from nodeagent import allinone
    from nodeagent.errors import AgentError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    host, port = _listen(args.listen)
    cfg = ServerConfig(Path(args.data_dir), host, port, args.advertise_address,
                       tls=not args.insecure_http, service_cidr=args.service_cluster_ip_range,
                       watch_window=args.default_watch_cache_size)
    wanted = Components(not args.no_scheduler, args.controllers, args.cluster_cidr)
    try:
        wanted.check()                     # a bad flag is one line, before anything starts
    except ValueError as e:
        raise AgentError(str(e)) from None
    server = APIServer(cfg)
    try:
        server.prepare_pki()
    except APIError as e:
        raise AgentError(f"certificates: {e.message}") from e

    try:
        asyncio.run(allinone.serve(server, lambda api: components.parts(api, wanted)))
    except (StorageError, OSError) as e:
        raise AgentError(f"server: {e}") from e
    return 0
