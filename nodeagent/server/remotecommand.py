"""exec and attach: a process's stdio carried over one WebSocket, as kubectl 1.37 speaks it.

kubectl exec/attach/cp (client-go tools/remotecommand, NewWebSocketExecutor) upgrade to a WebSocket
asking for the subprotocol `v5.channel.k8s.io` only; SPDY is its fallback when the WebSocket
upgrade itself fails (or with KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false), served at the end of this
module. We also accept `v4.channel.k8s.io` (the same framing minus the close signal).

Every binary message is one channel byte followed by data (apimachinery util/remotecommand):
    0 stdin   client → process
    1 stdout  process → client (with a tty, everything the terminal prints)
    2 stderr  process → client
    3 error   one metav1.Status JSON when the process ends: Success, or Failure with reason
              NonZeroExitCode and the exit code in details.causes[{reason: ExitCode}] —
              that is how `kubectl exec -- sh -c 'exit 3'` exits 3
    4 resize  client → terminal: {"Width": cols, "Height": rows}
  255 close   (v5) client → us: [255, <channel>] — "no more stdin"; we close the process's stdin
After the error channel is written we close the WebSocket normally (1000); the client's readers
see EOF and it returns.

A tty exec waits up to INITIAL_SIZE_WAIT for kubectl's first resize message before asking the
runtime to start the process, and applies it as soon as the process exists: CRI has no initial
terminal size, and a shell started at 0x0 columns misdraws until the next resize.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from nodeagent.cri.api import CRIError, RuntimeService, StreamSession
from nodeagent.server import pods as podlookup
from nodeagent.server.errors import bad_request
from nodeagent.server.fdio import hijack, read_fd, set_nonblocking, write_fd
from nodeagent.server.spdy import Session, Stream

log = logging.getLogger("nodeagent.server")

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
INITIAL_SIZE_WAIT = 1.0   # seconds a tty exec waits for the client's terminal size


@dataclass(frozen=True)
class StreamOptions:
    command: tuple[str, ...]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool

    @classmethod
    def from_query(cls, q, need_command: bool) -> StreamOptions:
        def flag(*names: str) -> bool:
            return any(q.get(n, "").lower() in ("1", "true") for n in names)
        # kubectl → API server says stdin/stdout/stderr; the API server → kubelet upstream says
        # input/output/error. We accept both, so the proxy can forward the query untouched.
        opts = cls(tuple(q.getall("command", [])), flag("stdin", "input"),
                   flag("stdout", "output"), flag("stderr", "error"), flag("tty"))
        if need_command and not opts.command:
            raise bad_request("you must specify at least 1 command")
        if not (opts.stdin or opts.stdout or opts.stderr):
            raise bad_request("you must specify at least 1 of stdin, stdout, stderr")
        if opts.tty and opts.stderr:
            opts = cls(opts.command, opts.stdin, opts.stdout, False, True)  # a tty has one output
        return opts


def status_for(rc: int | None, what: str) -> dict:
    if rc == 0:
        return {"metadata": {}, "status": "Success"}
    if rc is None:
        return {"metadata": {}, "status": "Failure", "message": what, "reason": "InternalError"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: {what}, exit code {rc}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(rc)}]}}


def _close_stdin(session: StreamSession) -> None:
    """End the process's stdin without taking the fd number away from its owner (the session
    closes it later): put /dev/null in its place, which closes the pipe's write end."""
    fd = session.stdin if session.tty_fd < 0 else -1
    if fd < 0:
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


async def serve(request: web.Request, runtime: RuntimeService, pods: podlookup.PodsProvider,
                attach: bool) -> web.StreamResponse:
    m = request.match_info
    opts = StreamOptions.from_query(request.query, need_command=not attach)
    pod = podlookup.find_pod(pods, m["namespace"], m["pod"])
    cid = podlookup.container_id(pod, m.get("container", "") or request.query.get("container", ""))
    upgrade = request.headers.get("Upgrade", "").lower()
    if upgrade == "websocket":
        channels: _Channels = await _WebSocketChannels.accept(request)
    elif upgrade.startswith("spdy/3.1"):
        channels = await _SpdyChannels.accept(request, opts)
    else:
        raise bad_request(f"exec and attach need an upgrade: WebSocket ({V5}, {V4}), or SPDY/3.1")
    what = f"error executing command [{' '.join(opts.command)}]" if not attach else "attach"
    try:
        if not await channels.ready():
            return channels.response
        # kubectl sends the terminal's size first thing; a tty process started before it arrives
        # would see 0x0 (`stty size`, full-screen programs). Wait a moment for it.
        size = await channels.initial_size(INITIAL_SIZE_WAIT) if opts.tty and not attach else None
        try:
            session = await (runtime.attach(cid, stdin=opts.stdin) if attach else
                             runtime.exec(cid, list(opts.command), tty=opts.tty, stdin=opts.stdin))
        except CRIError as e:
            await channels.finish(status_for(None, e.message))
            return channels.response
        if size is not None:
            _resize(session, size)
        try:
            await _pump(channels, session, opts, what)
        finally:
            session.close()
    finally:
        await channels.close()
    return channels.response


class _Channels:
    """The client's end, whichever protocol carries it."""
    response: web.StreamResponse

    async def ready(self) -> bool:                       # False: the client left before it began
        return True

    async def initial_size(self, timeout: float) -> bytes | None:   # the first resize message
        return None

    async def send(self, channel: int, data: bytes) -> None: ...
    async def finish(self, status: dict) -> None: ...    # the error channel, then the end
    async def run_input(self, session: StreamSession, stdin_fd: int) -> None: ...  # until the client leaves
    async def close(self) -> None: ...


class _WebSocketChannels(_Channels):
    def __init__(self, ws: web.WebSocketResponse):
        self.response = self.ws = ws
        self.early: list = []    # messages read while waiting for the size, replayed by run_input

    async def initial_size(self, timeout: float) -> bytes | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            try:
                msg = await self.ws.receive(timeout=left)
            except asyncio.TimeoutError:
                return None
            self.early.append(msg)
            if msg.type != WSMsgType.BINARY:
                return None
            if msg.data[:1] == bytes([RESIZE]):
                return msg.data[1:]
        return None

    async def _messages(self):
        early, self.early = self.early, []
        for msg in early:
            yield msg
        if all(m.type == WSMsgType.BINARY for m in early):   # else the client already left
            async for msg in self.ws:
                yield msg

    @classmethod
    async def accept(cls, request: web.Request) -> _WebSocketChannels:
        ws = web.WebSocketResponse(protocols=(V5, V4), max_msg_size=0)
        await ws.prepare(request)
        return cls(ws)

    async def send(self, channel: int, data: bytes) -> None:
        await self.ws.send_bytes(bytes([channel]) + data)

    async def finish(self, status: dict) -> None:
        await self.send(ERROR, json.dumps(status).encode())
        await self.ws.close()

    async def run_input(self, session: StreamSession, stdin_fd: int) -> None:
        v5 = self.ws.ws_protocol == V5
        async for msg in self._messages():
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            channel, data = msg.data[0], msg.data[1:]
            if channel == STDIN and stdin_fd >= 0 and data:
                await write_fd(stdin_fd, data)
            elif channel == RESIZE:
                _resize(session, data)
            elif channel == CLOSE and v5 and data[:1] == bytes([STDIN]):
                _close_stdin(session)

    async def close(self) -> None:
        await self.ws.close()


class _SpdyChannels(_Channels):
    """The SPDY fallback (client-go NewSPDYExecutor; kubelet cri/streaming/remotecommand): the
    client opens one SPDY stream per channel, each with a `streamType` header (error, stdin,
    stdout, stderr, resize); stdin ends with the stream's FIN; the error stream carries the same
    Status JSON as the WebSocket error channel."""

    KINDS = {"stdout": STDOUT, "stderr": STDERR, "error": ERROR}

    def __init__(self, opts: StreamOptions):
        self.opts = opts
        self.streams: dict[str, Stream] = {}
        self.wanted = {"error"} | {k for k, on in (("stdin", opts.stdin), ("stdout", opts.stdout),
                                                   ("stderr", opts.stderr), ("resize", opts.tty)) if on}
        self.all_there = asyncio.Event()
        self.sizes: asyncio.Queue[bytes] = asyncio.Queue()   # parsed resize objects, in order
        self.resize_reader: asyncio.Task | None = None
        self.transport = None
        self.task: asyncio.Task | None = None

    @classmethod
    async def accept(cls, request: web.Request, opts: StreamOptions) -> _SpdyChannels:
        wanted = [p.strip() for v in request.headers.getall("X-Stream-Protocol-Version", [])
                  for p in v.split(",")]
        chosen = next((p for p in wanted if p in (V5, V4)), None)
        if chosen is None:
            raise bad_request(f"unable to upgrade: unable to negotiate protocol: client supports "
                              f"{wanted}, server supports [{V5} {V4}]")
        self = cls(opts)
        reader, self.transport, self.response = await hijack(request, {
            "Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": chosen})

        async def write(frame: bytes) -> None:
            if self.transport.is_closing():
                raise ConnectionResetError("client went away")
            self.transport.write(frame)

        self.session = Session(lambda: reader.read(65536), write, self._on_stream)
        self.task = asyncio.get_running_loop().create_task(self.session.run())
        return self

    async def _on_stream(self, stream: Stream) -> None:
        kind = stream.headers.get("streamtype", "")
        if kind not in self.wanted or kind in self.streams:
            await stream.reset()
            return
        await stream.reply()
        self.streams[kind] = stream
        if set(self.streams) == self.wanted:
            self.all_there.set()

    async def ready(self) -> bool:
        waiter = asyncio.ensure_future(self.all_there.wait())
        done, _ = await asyncio.wait([waiter, self.task], timeout=30.0,
                                     return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self.all_there.is_set() and "resize" in self.streams:
            self.resize_reader = asyncio.ensure_future(self._read_sizes(self.streams["resize"]))
        return self.all_there.is_set()

    async def _read_sizes(self, stream: Stream) -> None:
        decoder, buf = json.JSONDecoder(), ""
        while data := await stream.read():
            buf += data.decode(errors="replace")
            while buf.strip():   # a stream of JSON objects, one per resize
                try:
                    obj, end = decoder.raw_decode(buf.lstrip())
                except ValueError:
                    break
                buf = buf.lstrip()[end:]
                self.sizes.put_nowait(json.dumps(obj).encode())

    async def initial_size(self, timeout: float) -> bytes | None:
        if self.resize_reader is None:
            return None
        try:
            return await asyncio.wait_for(self.sizes.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def send(self, channel: int, data: bytes) -> None:
        kind = next(k for k, c in self.KINDS.items() if c == channel)
        if kind in self.streams:
            await self.streams[kind].write(data)

    async def finish(self, status: dict) -> None:
        for kind in ("stdout", "stderr"):
            if kind in self.streams:
                await self.streams[kind].close()
        if "error" in self.streams:
            await self.streams["error"].write(json.dumps(status).encode())
            await self.streams["error"].close()

    async def run_input(self, session: StreamSession, stdin_fd: int) -> None:
        async def stdin() -> None:
            if "stdin" not in self.streams:
                return
            while data := await self.streams["stdin"].read():
                if stdin_fd >= 0:
                    await write_fd(stdin_fd, data)
            _close_stdin(session)   # the client closed its stdin stream: EOF for the process

        async def resize() -> None:
            while self.resize_reader is not None:
                _resize(session, await self.sizes.get())

        helpers = [asyncio.ensure_future(stdin()), asyncio.ensure_future(resize())]
        try:
            await self.task          # the connection's end is the client's end
        finally:
            for t in helpers:
                t.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def close(self) -> None:
        if self.resize_reader is not None:
            self.resize_reader.cancel()
        if self.transport is not None:
            self.transport.close()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


def _resize(session: StreamSession, data: bytes) -> None:
    with contextlib.suppress(ValueError, KeyError, TypeError):
        size = json.loads(data)
        session.resize(int(size["Height"]), int(size["Width"]))


async def _pump(channels: _Channels, session: StreamSession, opts: StreamOptions, what: str) -> None:
    loop = asyncio.get_running_loop()
    outputs = [(session.tty_fd, STDOUT)] if session.tty_fd >= 0 else \
        [(fd, ch) for fd, ch in ((session.stdout, STDOUT), (session.stderr, STDERR)) if fd >= 0]
    stdin_fd = session.tty_fd if session.tty_fd >= 0 else session.stdin
    for fd, _ in outputs:
        set_nonblocking(fd)
    if stdin_fd >= 0:
        set_nonblocking(stdin_fd)

    async def copy_out(fd: int, channel: int) -> None:
        while data := await read_fd(fd):
            if (channel == STDOUT and opts.stdout) or (channel == STDERR and opts.stderr):
                await channels.send(channel, data)

    readers = [loop.create_task(copy_out(fd, ch)) for fd, ch in outputs]
    client = loop.create_task(channels.run_input(session, stdin_fd))
    exited = loop.create_task(session.wait())
    try:
        done, _ = await asyncio.wait([exited, client], return_when=asyncio.FIRST_COMPLETED)
        if exited not in done:
            return  # the client went away: nobody to report to; the session is closed by our caller
        rc = exited.result()
        # Output written just before the exit is still in the pipe: drain it (bounded, since a
        # background child may hold the pipe open for ever).
        if readers:
            await asyncio.wait(readers, timeout=2.0)
        await channels.finish(status_for(rc, what))
    except (ConnectionError, RuntimeError) as e:
        log.debug("exec stream ended: %s", e)
    finally:
        for t in (*readers, client, exited):
            t.cancel()
        await asyncio.gather(*readers, client, exited, return_exceptions=True)
