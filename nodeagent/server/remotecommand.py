"""exec and attach: a process's stdio carried over one WebSocket, as kubectl 1.37 speaks it.

kubectl exec/attach/cp (client-go tools/remotecommand, NewWebSocketExecutor) upgrade to a WebSocket
asking for the subprotocol `v5.channel.k8s.io` only; SPDY is its fallback when the upgrade itself
fails, which never happens against us. We also accept `v4.channel.k8s.io` (the same framing minus
the close signal) for older clients.

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
from nodeagent.server.fdio import read_fd, set_nonblocking, write_fd

log = logging.getLogger("nodeagent.server")

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


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
    ws = web.WebSocketResponse(protocols=(V5, V4), max_msg_size=0)
    if not ws.can_prepare(request).ok:
        raise bad_request("exec and attach are served over WebSocket (v5.channel.k8s.io, "
                          "v4.channel.k8s.io); this request did not ask to upgrade to one")
    await ws.prepare(request)
    what = f"error executing command [{' '.join(opts.command)}]" if not attach else "attach"
    try:
        session = await (runtime.attach(cid, stdin=opts.stdin) if attach else
                         runtime.exec(cid, list(opts.command), tty=opts.tty, stdin=opts.stdin))
    except CRIError as e:
        await ws.send_bytes(bytes([ERROR]) + json.dumps(status_for(None, e.message)).encode())
        await ws.close()
        return ws
    try:
        await _pump(ws, session, opts, what)
    finally:
        session.close()
    return ws


async def _pump(ws: web.WebSocketResponse, session: StreamSession, opts: StreamOptions,
                what: str) -> None:
    loop = asyncio.get_running_loop()
    v5 = ws.ws_protocol == V5
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
                await ws.send_bytes(bytes([channel]) + data)

    async def copy_in() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            channel, data = msg.data[0], msg.data[1:]
            if channel == STDIN and stdin_fd >= 0 and data:
                await write_fd(stdin_fd, data)
            elif channel == RESIZE:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    size = json.loads(data)
                    session.resize(int(size["Height"]), int(size["Width"]))
            elif channel == CLOSE and v5 and data[:1] == bytes([STDIN]):
                _close_stdin(session)

    readers = [loop.create_task(copy_out(fd, ch)) for fd, ch in outputs]
    client = loop.create_task(copy_in())
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
        await ws.send_bytes(bytes([ERROR]) + json.dumps(status_for(rc, what)).encode())
        await ws.close()
    except (ConnectionError, RuntimeError) as e:
        log.debug("exec stream ended: %s", e)
    finally:
        for t in (*readers, client, exited):
            t.cancel()
        await asyncio.gather(*readers, client, exited, return_exceptions=True)
