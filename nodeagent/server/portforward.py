"""port-forward: TCP connections to a pod's ports, multiplexed over one SPDY session.

What kubectl 1.37 sends (kubectl cmd/portforward createDialer, client-go tools/portforward):
a WebSocket upgrade with subprotocol `SPDY/3.1+portforward.k8s.io` — SPDY tunnelled inside
WebSocket binary messages — and, only if that upgrade fails, a plain `Upgrade: SPDY/3.1` with
`X-Stream-Protocol-Version: portforward.k8s.io`. Both end in the same SPDY session (spdy.py).

For each connection a user makes to the local port, the client opens two streams sharing a
`requestID` (kubelet cri/streaming/portforward/httpstream.go):
  - `streamType: error` — the client half-closes it at once and reads it to the end: anything we
    write there becomes "an error occurred forwarding 8080 -> 80: ..." on the user's terminal;
  - `streamType: data` — the connection's bytes, both ways.
When both have arrived we ask the runtime for a socket connected to the port inside the pod's
network namespace (RuntimeService.port_forward) and copy. When the pod side ends, we half-close
the data stream, then close the error stream: the client takes that as "this connection is done".

Other clients (the official Python client's `portforward`) speak the kubelet's older WebSocket
protocol, `v4.channel.k8s.io` (cri/streaming/portforward/websocket.go): the ports are in the query
(`?port=80&port=443`), one TCP connection per port for the WebSocket's lifetime, channel 2i
carrying port i's data and 2i+1 its errors; our first message on each channel is the port number
(2 bytes, little-endian).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from aiohttp import WSMsgType, web

from nodeagent.cri.api import CRIError, RuntimeService
from nodeagent.server import pods as podlookup
from nodeagent.server.errors import bad_request
from nodeagent.server.fdio import hijack
from nodeagent.server.spdy import Session, Stream

log = logging.getLogger("nodeagent.server")

PROTOCOL = "portforward.k8s.io"
WS_V4 = "v4.channel.k8s.io"
WS_TUNNEL = "SPDY/3.1+" + PROTOCOL
STREAM_CREATION_TIMEOUT = 30.0


class _Forwarder:
    """One SPDY session's worth of forwarded connections for one pod sandbox."""

    def __init__(self, runtime: RuntimeService, sandbox: str, pod_name: str):
        self.runtime = runtime
        self.sandbox = sandbox
        self.pod_name = pod_name
        self.pairs: dict[str, dict[str, Stream]] = {}
        self.tasks: set[asyncio.Task] = set()

    async def on_stream(self, stream: Stream) -> None:
        h = stream.headers
        port, kind = h.get("port", ""), h.get("streamtype", "")
        if not port.isdigit() or not 0 < int(port) < 65536 or kind not in ("error", "data"):
            await stream.reset()   # upstream rejects such a stream before replying
            return
        await stream.reply()
        # Old clients send no requestID: upstream pairs error stream N with data stream N+2.
        rid = h.get("requestid") or str(stream.id if kind == "error" else stream.id - 2)
        pair = self.pairs.setdefault(rid, {})
        if kind in pair:
            await stream.write(f"error processing stream for request {rid}: {kind} stream "
                               "already assigned".encode())
            await stream.close()
            return
        pair[kind] = stream
        if len(pair) == 2:
            del self.pairs[rid]
            t = asyncio.get_running_loop().create_task(self.forward(int(port), pair["data"], pair["error"]))
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)

    async def forward(self, port: int, data: Stream, error: Stream) -> None:
        writer = None
        try:
            try:
                fd = await self.runtime.port_forward(self.sandbox, port)
                sock = socket.socket(fileno=fd)
                reader, writer = await asyncio.open_connection(sock=sock)
            except (CRIError, OSError) as e:
                msg = e.message if isinstance(e, CRIError) else str(e)
                await error.write(f"error forwarding port {port} to pod {self.pod_name}: {msg}".encode())
                return

            async def to_pod() -> None:
                while chunk := await data.read():
                    writer.write(chunk)
                    await writer.drain()
                with contextlib.suppress(OSError):
                    writer.write_eof()   # the user's side finished sending: pass the FIN on

            upstream = asyncio.get_running_loop().create_task(to_pod())
            try:
                while chunk := await reader.read(65536):
                    await data.write(chunk)
            except OSError as e:
                log.debug("port-forward %d: %s", port, e)
            finally:
                upstream.cancel()
                await asyncio.gather(upstream, return_exceptions=True)
        finally:
            if writer is not None:
                writer.close()
            await data.close()
            await error.close()

    async def close(self) -> None:
        for t in list(self.tasks):
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def serve(request: web.Request, runtime: RuntimeService,
                pods: podlookup.PodsProvider) -> web.StreamResponse:
    m = request.match_info
    pod = podlookup.find_pod(pods, m["namespace"], m["pod"])
    sandbox = await podlookup.sandbox_id(runtime, pod)
    fwd = _Forwarder(runtime, sandbox, pod["metadata"]["name"])
    upgrade = request.headers.get("Upgrade", "").lower()
    if upgrade == "websocket":
        ws = web.WebSocketResponse(protocols=(WS_TUNNEL, WS_V4), max_msg_size=0)
        if ws.can_prepare(request).protocol != WS_TUNNEL:
            ports = _query_ports(request)
            await ws.prepare(request)
            return await _serve_v4(ws, fwd, ports)
        await ws.prepare(request)
        queue: asyncio.Queue[bytes] = asyncio.Queue()

        async def pump() -> None:
            async for msg in ws:
                # spdystream writes each field separately, empty ones too: an empty message is
                # not the end of the stream (b"" is, to the session).
                if msg.type == WSMsgType.BINARY and msg.data:
                    queue.put_nowait(msg.data)
            queue.put_nowait(b"")

        pumper = asyncio.get_running_loop().create_task(pump())
        session = Session(queue.get, ws.send_bytes, fwd.on_stream)
        try:
            await session.run()
        finally:
            await fwd.close()
            pumper.cancel()
            await ws.close()
        return ws
    if upgrade.startswith("spdy/3.1"):
        wanted = [p.strip() for v in request.headers.getall("X-Stream-Protocol-Version", [])
                  for p in v.split(",")]
        if PROTOCOL not in wanted:
            raise bad_request(f"unable to upgrade: unable to negotiate protocol: client supports "
                              f"{wanted}, server supports [{PROTOCOL}]")
        reader, transport, resp = await hijack(request, {"Connection": "Upgrade", "Upgrade": "SPDY/3.1",
                                                   "X-Stream-Protocol-Version": PROTOCOL})

        async def write(frame: bytes) -> None:
            if transport.is_closing():
                raise ConnectionResetError("client went away")
            transport.write(frame)

        session = Session(lambda: reader.read(65536), write, fwd.on_stream)
        try:
            await session.run()
        finally:
            await fwd.close()
            transport.close()
        return resp
    raise bad_request("port-forward needs an upgrade: WebSocket with subprotocol "
                      f"{WS_TUNNEL}, or SPDY/3.1")


def _query_ports(request: web.Request) -> list[int]:
    # `port` is the kubelet's parameter; `ports` the API server's (PodPortForwardOptions), which
    # our proxy forwards untouched.
    raw = [p for v in request.query.getall("port", []) + request.query.getall("ports", [])
           for p in v.split(",")]
    if not raw:
        raise bad_request('query parameter "port" is required')
    ports = []
    for p in raw:
        if not p.isdigit() or not 0 < int(p) < 65536:
            raise bad_request(f'unable to parse "{p}" as a port')
        ports.append(int(p))
    return ports


async def _serve_v4(ws: web.WebSocketResponse, fwd: _Forwarder, ports: list[int]) -> web.WebSocketResponse:
    """The v4 channel protocol: one connection per port, opened at once."""
    loop = asyncio.get_running_loop()
    inbound: list[asyncio.Queue[bytes]] = [asyncio.Queue() for _ in ports]

    class Channel:
        """Looks like a SPDY Stream to _Forwarder.forward: reads what the client sent on the
        port's data channel; writes go out on channel `number`."""

        def __init__(self, number: int, queue: asyncio.Queue | None):
            self.number, self.queue = number, queue

        async def read(self) -> bytes:
            return await self.queue.get()

        async def write(self, data: bytes) -> None:
            if not ws.closed:
                await ws.send_bytes(bytes([self.number]) + data)

        async def close(self) -> None:
            pass

    for i, port in enumerate(ports):
        for ch in (2 * i, 2 * i + 1):
            await ws.send_bytes(bytes([ch]) + port.to_bytes(2, "little"))
    tasks = [loop.create_task(fwd.forward(port, Channel(2 * i, inbound[i]), Channel(2 * i + 1, None)))
             for i, port in enumerate(ports)]

    async def pump() -> None:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY and len(msg.data) > 1 and msg.data[0] % 2 == 0 \
                    and msg.data[0] // 2 < len(ports):
                inbound[msg.data[0] // 2].put_nowait(msg.data[1:])
        for q in inbound:
            q.put_nowait(b"")

    client = loop.create_task(pump())
    try:
        await asyncio.wait([client, asyncio.gather(*tasks)], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (client, *tasks):
            t.cancel()
        await asyncio.gather(client, *tasks, return_exceptions=True)
        await ws.close()
    return ws
