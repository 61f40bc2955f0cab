"""The API server's doors to the kubelets: pods/log, pods/exec, pods/attach, pods/portforward,
nodes/proxy.

kubectl never talks to a node. `kubectl logs web` asks us for /api/v1/namespaces/default/pods/web/log;
we look up which node runs the pod (spec.nodeName), where that node's kubelet listens
(status.addresses InternalIP : status.daemonEndpoints.kubeletEndpoint.Port) and forward the request
to the kubelet's own path (/containerLogs/default/web/<container>), authenticating with our
kubelet-client certificate (certs.py). As the kube-apiserver does by default (no
--kubelet-certificate-authority), we do not verify the kubelet's serving certificate: a kubelet
that joined on its own has a self-signed one.

Two kinds of forwarding:
  - plain requests (logs, most of nodes/proxy): an HTTP client request, the answer streamed back
    chunk by chunk — `kubectl logs -f` sees each line as the kubelet writes it;
  - upgrades (exec, attach, port-forward: WebSocket, or SPDY/3.1 for old clients): we replay the
    client's upgrade request to the kubelet over TLS; if it answers `101 Switching Protocols` we
    answer the client the same and from then on copy bytes both ways without looking at them.
    The WebSocket handshake stays valid because the kubelet computes Sec-WebSocket-Accept from the
    client's own key, which we pass on untouched. If the kubelet refuses, the client gets its
    message as a Status.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from controlplane.apiserver.errors import APIError, bad_request
from controlplane.apiserver.requests import json_response
from controlplane.apiserver.resources import REGISTRY

_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
            500: "InternalError", 503: "ServiceUnavailable"}
# Not forwarded to a kubelet: our own credentials, and the framing of the client's connection.
_DROP = {"authorization", "host", "content-length", "transfer-encoding", "keep-alive"}


class KubeletProxy:
    def __init__(self, store, client_cert: Path, client_key: Path):
        self.store = store
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE   # see the module docstring
        ctx.load_cert_chain(client_cert, client_key)
        self.ssl = ctx

    def register(self, r: web.UrlDispatcher) -> None:
        pod = "/api/v1/namespaces/{namespace}/pods/{name}/"
        r.add_get(pod + "log", self.pod_log)
        for sub in ("exec", "attach", "portforward"):
            r.add_route("GET", pod + sub, self.pod_stream)
            r.add_route("POST", pod + sub, self.pod_stream)
        r.add_route("*", "/api/v1/nodes/{name}/proxy", self.node_proxy)
        r.add_route("*", "/api/v1/nodes/{name}/proxy/{path:.*}", self.node_proxy)

    # ---- where ----
    def _node_endpoint(self, node_name: str) -> tuple[str, int]:
        node = self.store.get(REGISTRY.lookup("", "v1", "nodes"), None, node_name).obj
        status = node.get("status") or {}
        addrs = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
        host = addrs.get("InternalIP") or addrs.get("ExternalIP") or addrs.get("Hostname")
        if not host:
            raise APIError(503, "ServiceUnavailable", f'no preferred addresses found; known '
                           f'addresses: [] for node "{node_name}"')
        port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or 10250
        return host, int(port)

    def _pod(self, request: web.Request) -> tuple[dict, str, int]:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        pod = self.store.get(REGISTRY.lookup("", "v1", "pods"), ns, name).obj
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            raise bad_request(f"pod {name} does not have a host assigned")
        return (pod, *self._node_endpoint(node))

    @staticmethod
    def _container(pod: dict, request: web.Request) -> str:
        name = pod["metadata"]["name"]
        spec = pod.get("spec") or {}
        want = request.query.get("container", "")
        names = [c["name"] for key in ("containers", "initContainers", "ephemeralContainers")
                 for c in spec.get(key) or []]
        if not want:
            main = [c["name"] for c in spec.get("containers") or []]
            if len(main) != 1:
                raise bad_request(f"a container name must be specified for pod {name}, choose one "
                                  f"of: [{' '.join(main)}]")
            return main[0]
        if want not in names:
            raise bad_request(f"container {want} is not valid for pod {name}")
        return want

    @staticmethod
    def _query(request: web.Request) -> str:
        q = [(k, v) for k, v in request.query.items() if k != "container"]
        return "?" + urlencode(q) if q else ""

    # ---- handlers ----
    async def pod_log(self, request: web.Request) -> web.StreamResponse:
        pod, host, port = self._pod(request)
        c = self._container(pod, request)
        md = pod["metadata"]
        return await self._forward(request, host, port,
                                   f"/containerLogs/{md['namespace']}/{md['name']}/{c}{self._query(request)}")

    async def pod_stream(self, request: web.Request) -> web.StreamResponse:
        pod, host, port = self._pod(request)
        md = pod["metadata"]
        sub = request.path.rsplit("/", 1)[1]
        if sub == "portforward":
            path = f"/portForward/{md['namespace']}/{md['name']}{self._query(request)}"
        else:
            path = f"/{sub}/{md['namespace']}/{md['name']}/{self._container(pod, request)}{self._query(request)}"
        return await self._forward(request, host, port, path)

    async def node_proxy(self, request: web.Request) -> web.StreamResponse:
        host, port = self._node_endpoint(request.match_info["name"])
        path = "/" + request.match_info.get("path", "")
        return await self._forward(request, host, port, path + (f"?{request.query_string}"
                                                                 if request.query_string else ""))

    # ---- forwarding ----
    async def _forward(self, request: web.Request, host: str, port: int, path: str) -> web.StreamResponse:
        if "upgrade" in request.headers.get("Connection", "").lower():
            return await self._tunnel(request, host, port, path)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP}
        body = await request.read() if request.can_read_body else None
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        try:
            async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
                async with session.request(request.method, f"https://{host}:{port}{path}",
                                           headers=headers, data=body, ssl=self.ssl,
                                           allow_redirects=False) as up:
                    if up.status >= 400:
                        raise self._kubelet_error(up.status, await up.text(errors="replace"))
                    resp = web.StreamResponse(status=up.status, headers={
                        k: v for k, v in up.headers.items()
                        if k.lower() in ("content-type", "x-content-type-options")})
                    resp.enable_chunked_encoding()
                    await resp.prepare(request)
                    async for chunk in up.content.iter_any():
                        await resp.write(chunk)
                    await resp.write_eof()
                    return resp
        except aiohttp.ClientConnectionError as e:
            raise APIError(503, "ServiceUnavailable",
                           f"error dialing backend: kubelet at {host}:{port}: {e}") from None

    @staticmethod
    def _kubelet_error(code: int, text: str) -> APIError:
        return APIError(code, _REASONS.get(code, "InternalError"), text.strip() or f"kubelet answered {code}")

    async def _tunnel(self, request: web.Request, host: str, port: int, path: str) -> web.StreamResponse:
        try:
            up_r, up_w = await asyncio.open_connection(host, port, ssl=self.ssl, server_hostname=host)
        except OSError as e:
            raise APIError(503, "ServiceUnavailable",
                           f"error dialing backend: kubelet at {host}:{port}: {e}") from None
        try:
            head = [f"{request.method} {path} HTTP/1.1", f"Host: {host}:{port}"]
            head += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() not in _DROP]
            up_w.write(("\r\n".join(head) + "\r\n\r\n").encode())
            await up_w.drain()
            raw = await up_r.readuntil(b"\r\n\r\n")
            status_line, *lines = raw.decode("latin-1").split("\r\n")
            code = int(status_line.split(" ", 2)[1])
            headers = [tuple(x.strip() for x in ln.split(":", 1)) for ln in lines if ":" in ln]
            if code != 101:
                length = next((int(v) for k, v in headers if k.lower() == "content-length"), None)
                body = await (up_r.readexactly(length) if length is not None else up_r.read(1 << 20))
                raise self._kubelet_error(code, body.decode(errors="replace"))
            resp = web.StreamResponse(status=101)
            for k, v in headers:
                resp.headers.add(k, v)
            resp.force_close()
            await resp.prepare(request)
            client_r = asyncio.StreamReader(limit=2 ** 20)
            request.protocol.set_parser(_RawFeed(client_r))
            await _splice(client_r, request.transport, up_r, up_w)
            return resp
        except (asyncio.IncompleteReadError, ValueError, IndexError) as e:
            raise APIError(502, "InternalError", f"bad answer from kubelet at {host}:{port}: {e}") from None
        finally:
            up_w.close()
            with contextlib.suppress(Exception):
                await up_w.wait_closed()


class _RawFeed:
    """In place of aiohttp's payload parser after a 101: the client's bytes, unparsed."""

    def __init__(self, reader: asyncio.StreamReader):
        self.reader = reader

    def feed_data(self, data: bytes):
        self.reader.feed_data(data)
        return False, b""

    def feed_eof(self) -> None:
        self.reader.feed_eof()


async def _splice(client_r: asyncio.StreamReader, client_t: asyncio.Transport,
                  up_r: asyncio.StreamReader, up_w: asyncio.StreamWriter) -> None:
    """Copy both ways until either side ends; then both are closed (TLS cannot half-close)."""
    async def up() -> None:
        while data := await client_r.read(65536):
            up_w.write(data)
            await up_w.drain()

    async def down() -> None:
        while data := await up_r.read(65536):
            if client_t.is_closing():
                return
            client_t.write(data)
            while client_t.get_write_buffer_size() > (1 << 20) and not client_t.is_closing():
                await asyncio.sleep(0.01)   # the client reads slowly: let its buffer drain

    tasks = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        client_t.close()
