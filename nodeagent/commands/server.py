"""`nodeagent server`: run the control plane (for now the API server; the scheduler and the
controllers join this command in later issues)."""

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
    import signal
    from pathlib import Path

    from controlplane.apiserver.errors import APIError
    from controlplane.apiserver.server import APIServer, ServerConfig, serve_forever
    from controlplane.storage import StorageError
    from nodeagent.errors import AgentError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    host, port = _listen(args.listen)
    cfg = ServerConfig(Path(args.data_dir), host, port, args.advertise_address,
                       tls=not args.insecure_http, service_cidr=args.service_cluster_ip_range,
                       watch_window=args.default_watch_cache_size)
    server = APIServer(cfg)
    try:
        server.prepare_pki()
    except APIError as e:
        raise AgentError(f"certificates: {e.message}") from e

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await serve_forever(server)
        except asyncio.CancelledError:
            pass

    try:
        asyncio.run(main())
    except (StorageError, OSError) as e:
        raise AgentError(f"server: {e}") from e
    return 0
