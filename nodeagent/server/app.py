"""The kubelet API server: routes, TLS, start and stop.

Routes (the kubelet's own paths, pkg/kubelet/server/server.go):
    GET  /healthz                                        "ok"
    GET  /pods                                           PodList of the pods this agent runs
    GET  /containerLogs/{namespace}/{pod}/{container}    logs.py
    GET|POST /exec/{namespace}/{pod}/{container}         remotecommand.py (WebSocket)
    GET|POST /attach/{namespace}/{pod}/{container}       remotecommand.py (WebSocket)
    GET|POST /portForward/{namespace}/{pod}              portforward.py (WebSocket-tunnelled SPDY, SPDY)
    GET  /stats/summary, /metrics, /metrics/resource     stats.py
    GET  /configz                                        the agent's KubeletConfiguration
Errors are plain text with an HTTP status, as the kubelet writes them; the API server turns them
into a Status for kubectl.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket

from aiohttp import web

from nodeagent.cri.api import ContainerState, CRIError, RuntimeService
from nodeagent.server import logs, pods as podlookup, portforward, remotecommand, stats
from nodeagent.server.errors import KubeletAPIError
from nodeagent.server.tls import KubeletTLS, server_context

log = logging.getLogger("nodeagent.server")
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"   # the text exposition format


class KubeletServer:
    def __init__(self, runtime: RuntimeService, pods: podlookup.PodsProvider, *,
                 tls: KubeletTLS | None, host: str = "0.0.0.0", port: int = 10250,
                 node_name: str = "", configz: dict | None = None):
        self.runtime = runtime
        self.configz = configz or {}          # the agent's KubeletConfiguration, for /configz
        self.pods = pods
        self.tls = tls
        self.host = host
        self.port = port
        self.node_name = node_name or socket.gethostname()
        self._runner: web.AppRunner | None = None

    # ---- lifecycle ----
    async def start(self) -> None:
        self._runner = web.AppRunner(self.make_app(), access_log=None, handler_cancellation=True,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        ctx = server_context(self.tls) if self.tls else None
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=ctx)
        await site.start()
        if self.port == 0:  # tests ask for any free port
            self.port = site._server.sockets[0].getsockname()[1]
        log.info("kubelet API on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    # ---- the app ----
    def make_app(self) -> web.Application:
        @web.middleware
        async def errors(request: web.Request, handler):
            try:
                return await handler(request)
            except KubeletAPIError as e:
                return web.Response(status=e.status, text=e.message + "\n")
            except CRIError as e:
                return web.Response(status=500, text=e.message + "\n")

        app = web.Application(middlewares=[errors])
        r = app.router
        r.add_get("/healthz", self.healthz)
        r.add_get("/pods", self.list_pods)
        r.add_get("/containerLogs/{namespace}/{pod}/{container}", self.container_logs)
        for verb, attach in (("exec", False), ("attach", True)):
            for path in (f"/{verb}/{{namespace}}/{{pod}}/{{container}}",
                         f"/{verb}/{{namespace}}/{{pod}}/{{uid}}/{{container}}"):
                r.add_route("GET", path, self._remote(attach))
                r.add_route("POST", path, self._remote(attach))
        for path in ("/portForward/{namespace}/{pod}", "/portForward/{namespace}/{pod}/{uid}"):
            r.add_route("GET", path, self.port_forward)
            r.add_route("POST", path, self.port_forward)
        r.add_get("/stats/summary", self.stats_summary)
        r.add_get("/metrics", self.metrics)
        r.add_get("/metrics/resource", self.resource_metrics)
        r.add_get("/configz", self.config)
        return app

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def list_pods(self, request: web.Request) -> web.Response:
        body = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": list(self.pods())}
        return web.json_response(body, dumps=lambda o: json.dumps(o, separators=(",", ":")))

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        opts = logs.LogOptions.from_query(request.query)
        pod = podlookup.find_pod(self.pods, m["namespace"], m["pod"])
        cid = podlookup.container_id(pod, m["container"], opts.previous)
        try:
            status = await self.runtime.container_status(cid)
        except CRIError as e:
            raise KubeletAPIError(404, f'container "{m["container"]}" in pod "{m["pod"]}" is not '
                                  f"available: {e.message}") from None

        async def running() -> bool:
            if opts.previous:
                return False
            try:
                return (await self.runtime.container_status(cid)).state is ContainerState.RUNNING
            except CRIError:
                return False

        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            await logs.stream_file(status.log_path, opts, resp.write, running)
        except KubeletAPIError as e:
            await resp.write(e.message.encode() + b"\n")
        except ConnectionResetError:   # the client left (kubectl logs -f, then ^C)
            return resp
        await resp.write_eof()
        return resp

    def _remote(self, attach: bool):
        async def handler(request: web.Request) -> web.StreamResponse:
            return await remotecommand.serve(request, self.runtime, self.pods, attach)
        return handler

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        return await portforward.serve(request, self.runtime, self.pods)

    async def stats_summary(self, request: web.Request) -> web.Response:
        return web.json_response(await stats.summary(self.runtime, self.pods, self.node_name))

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=(await stats.metrics(self.runtime, self.pods, self.node_name)).encode(),
                            headers={"Content-Type": PROMETHEUS, "X-Content-Type-Options": "nosniff"})

    async def config(self, request: web.Request) -> web.Response:
        """The kubelet's /configz: {"kubeletconfig": <its KubeletConfiguration>}."""
        return web.json_response({"kubeletconfig": self.configz})

    async def resource_metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=(await stats.resource_metrics(self.runtime, self.pods)).encode(),
                            headers={"Content-Type": PROMETHEUS})


async def serve_kubelet_api(runtime: RuntimeService, pods_provider: podlookup.PodsProvider,
                            tls: KubeletTLS | None, port: int = 10250, *, host: str = "0.0.0.0",
                            node_name: str = "", configz: dict | None = None) -> KubeletServer:
    """Start the kubelet API (the agent calls this once; `await server.stop()` at shutdown)."""
    server = KubeletServer(runtime, pods_provider, tls=tls, host=host, port=port, node_name=node_name,
                           configz=configz)
    await server.start()
    return server
