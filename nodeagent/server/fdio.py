"""Reading and writing the runtime's file descriptors from the event loop, and taking over an
HTTP connection after a `101 Switching Protocols`.

A StreamSession (nodeagent/cri/api.py) hands us raw fds: pipe ends, or a pty master. We never
block on them: each read waits for readability with `loop.add_reader`, then reads what is there
with the fd in non-blocking mode. A pty master reports EIO once the last slave fd is closed (the
process exited) — that is its end of file, not an error. The fds stay owned by the session; we
only borrow them.
"""

from __future__ import annotations

import asyncio
import errno
import os

from aiohttp import web

CHUNK = 32 * 1024


def set_nonblocking(fd: int) -> None:
    os.set_blocking(fd, False)


async def read_fd(fd: int) -> bytes:
    """The next bytes from fd; b"" at end of file (or EIO on a pty master)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return os.read(fd, CHUNK)
        except BlockingIOError:
            pass
        except OSError as e:
            if e.errno == errno.EIO:
                return b""
            raise
        ready = loop.create_future()
        loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
        try:
            await ready
        finally:
            loop.remove_reader(fd)


async def write_fd(fd: int, data: bytes) -> None:
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
            view = view[n:]
            continue
        except BlockingIOError:
            pass
        ready = loop.create_future()
        loop.add_writer(fd, lambda: ready.done() or ready.set_result(None))
        try:
            await ready
        finally:
            loop.remove_writer(fd)


class _RawFeed:
    """Stands in for aiohttp's payload parser after an upgrade: every byte the client sends
    from then on goes, unparsed, into a StreamReader."""

    def __init__(self, reader: asyncio.StreamReader):
        self.reader = reader

    def feed_data(self, data: bytes):
        self.reader.feed_data(data)
        return False, b""

    def feed_eof(self) -> None:
        self.reader.feed_eof()


async def hijack(request: web.Request, headers: dict[str, str]) -> tuple[
        asyncio.StreamReader, asyncio.Transport, web.StreamResponse]:
    """Answer `101 Switching Protocols` with `headers`, then own the connection's bytes: returns a
    reader of what the client sends, the transport to write to, and the response the handler must
    return. The caller closes the transport when done (the connection never returns to HTTP)."""
    resp = web.StreamResponse(status=101, headers=headers)
    resp.force_close()
    await resp.prepare(request)
    reader = asyncio.StreamReader(limit=2 ** 20)
    request.protocol.set_parser(_RawFeed(reader))
    return reader, request.transport, resp
