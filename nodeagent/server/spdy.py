"""SPDY/3.1 sessions, server side: what `kubectl port-forward` speaks to a kubelet.

SPDY (the ancestor of HTTP/2) multiplexes many bidirectional *streams* over one connection. The
Kubernetes client (moby/spdystream, k8s.io/apimachinery/pkg/util/httpstream/spdy) uses it for
port-forwarding: for every TCP connection accepted on the user's machine it opens two streams,
`streamType: error` and `streamType: data`, both carrying `port` and `requestID` headers.

kubectl 1.37 reaches us two ways (client-go tools/portforward; kubectl cmd/portforward createDialer):
  1. first, a WebSocket whose subprotocol is `SPDY/3.1+portforward.k8s.io`: the SPDY bytes travel
     inside binary WebSocket messages ("tunnelling"), so the session below reads a byte stream made
     of the message payloads;
  2. if that upgrade fails, a plain HTTP upgrade to `SPDY/3.1` (X-Stream-Protocol-Version
     portforward.k8s.io); the session then owns the raw connection.
Either way this module only sees "bytes in" and "bytes out".

Frames (draft-mbelshe-httpbis-spdy-00, version 3):
    control: |1|version(15)|type(16)|  flags(8)|length(24)|  payload
    data:    |0|stream-id(31)|          flags(8)|length(24)|  payload     (flag 0x01 = FIN)
The header blocks of SYN_STREAM / SYN_REPLY / HEADERS are zlib-compressed with one compressor per
direction for the whole connection, primed with a fixed dictionary (below), and each block ends in
a sync flush — so a decompressor that missed a block can never decode the next one.

What we implement: SYN_STREAM (a client opens a stream), SYN_REPLY (we accept it — the client
waits for it), DATA with FIN (half-close), RST_STREAM, PING (echoed; the client pings every 10 s),
GOAWAY. SETTINGS and WINDOW_UPDATE are read and ignored: spdystream, the only peer, does no flow
control either.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import Awaitable, Callable

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_PROTOCOL_ERROR, RST_CANCEL = 1, 5
MAX_DATA = 32 * 1024  # our own frames; the protocol allows 16 MiB


def _dictionary() -> bytes:
    """The SPDY/3 header dictionary (spec section 2.6.10.1): length-prefixed header names and
    values, then a run of common status lines, dates and media types. Both ends must prime zlib
    with exactly these bytes."""
    words = ("options head post put delete trace accept accept-charset accept-encoding "
             "accept-language accept-ranges age allow authorization cache-control connection "
             "content-base content-encoding content-language content-length content-location "
             "content-md5 content-range content-type date etag expect expires from host if-match "
             "if-modified-since if-none-match if-range if-unmodified-since last-modified location "
             "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after "
             "server te trailer transfer-encoding upgrade user-agent vary via warning "
             "www-authenticate method get status").split() + ["200 OK"] + \
        "version HTTP/1.1 url public set-cookie keep-alive origin".split()
    tail = ("100101201202205206300302303304305306307402405406407408409410411412413414415416417502"
            "504505203 Non-Authoritative Information204 No Content301 Moved Permanently"
            "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
            "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct "
            "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,"
            "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,"
            "publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
    return b"".join(struct.pack(">I", len(w)) + w.encode() for w in words) + tail.encode()


DICTIONARY = _dictionary()


class SpdyError(Exception):
    pass


class Stream:
    """One SPDY stream opened by the client. Reads return b"" once the client half-closed (FIN)
    or reset it. Owned by the Session; closed by whoever handles it."""

    def __init__(self, session: Session, stream_id: int, headers: dict[str, str]):
        self.session = session
        self.id = stream_id
        self.headers = headers
        self._incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self._remote_done = False
        self.local_closed = False

    def _feed(self, data: bytes, fin: bool) -> None:
        if self._remote_done:
            return
        if data:
            self._incoming.put_nowait(data)
        if fin:
            self._remote_done = True
            self._incoming.put_nowait(b"")

    async def read(self) -> bytes:
        return await self._incoming.get()

    async def reply(self) -> None:
        await self.session._send_control(SYN_REPLY, 0, struct.pack(">I", self.id) +
                                         self.session._compress({}))

    async def write(self, data: bytes) -> None:
        if self.local_closed:   # we closed it, or the client reset it: nothing more may go out
            return
        for i in range(0, len(data), MAX_DATA):
            await self.session._send(struct.pack(">II", self.id, min(MAX_DATA, len(data) - i)) +
                                     data[i:i + MAX_DATA])

    async def close(self) -> None:
        """Half-close our side (DATA with FIN), as spdystream's Stream.Close does."""
        if not self.local_closed:
            self.local_closed = True
            await self.session._send(struct.pack(">II", self.id, FLAG_FIN << 24))

    async def reset(self) -> None:
        self.local_closed = True
        self._feed(b"", True)
        await self.session._send_control(RST_STREAM, 0, struct.pack(">II", self.id, RST_CANCEL))


class Session:
    """A server-side SPDY session over a byte stream. `read()` returns the next chunk of bytes
    (b"" at EOF); `write(frame)` sends one frame. `on_stream` is called for every stream the client
    opens, after its headers are parsed; it decides whether to reply or reset."""

    def __init__(self, read: Callable[[], Awaitable[bytes]], write: Callable[[bytes], Awaitable[None]],
                 on_stream: Callable[[Stream], Awaitable[None]]):
        self._read = read
        self._write = write
        self._on_stream = on_stream
        self._buf = bytearray()
        self._eof = False
        self._wlock = asyncio.Lock()      # frames must not interleave, and the compressor is shared
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zdict=DICTIONARY)
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self.streams: dict[int, Stream] = {}
        self.closed = asyncio.Event()

    # ---- writing ----
    async def _send(self, frame: bytes) -> None:
        if self.closed.is_set():
            return
        async with self._wlock:
            try:
                await self._write(frame)
            except (ConnectionError, RuntimeError):
                self.closed.set()

    async def _send_control(self, ftype: int, flags: int, payload: bytes) -> None:
        await self._send(struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(payload))
                         + payload)

    def _compress(self, headers: dict[str, str]) -> bytes:
        block = struct.pack(">I", len(headers)) + b"".join(
            struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v.encode())) + v.encode()
            for k, v in headers.items())
        return self._deflate.compress(block) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    # ---- reading ----
    async def _need(self, n: int) -> bytes | None:
        while len(self._buf) < n:
            chunk = await self._read()
            if not chunk:
                return None
            self._buf += chunk
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _headers(self, compressed: bytes) -> dict[str, str]:
        try:
            block = self._inflate.decompress(compressed)
        except zlib.error as e:
            raise SpdyError(f"bad header block: {e}") from None
        (count,) = struct.unpack_from(">I", block, 0)
        pos, out = 4, {}
        for _ in range(count):
            (n,) = struct.unpack_from(">I", block, pos)
            name = block[pos + 4:pos + 4 + n].decode().lower()
            pos += 4 + n
            (n,) = struct.unpack_from(">I", block, pos)
            value = block[pos + 4:pos + 4 + n].decode()
            pos += 4 + n
            out[name] = value.split("\x00")[0]
        return out

    async def run(self) -> None:
        """Read frames until the peer goes away; then every open stream sees EOF."""
        tasks: set[asyncio.Task] = set()
        try:
            while True:
                head = await self._need(8)
                if head is None:
                    return
                word, flags_len = struct.unpack(">II", head)
                flags, length = flags_len >> 24, flags_len & 0xFFFFFF
                payload = await self._need(length) if length else b""
                if payload is None:
                    return
                if not word & 0x80000000:
                    stream = self.streams.get(word & 0x7FFFFFFF)
                    if stream is not None:
                        stream._feed(payload, bool(flags & FLAG_FIN))
                    continue
                ftype = word & 0xFFFF
                if ftype == SYN_STREAM:
                    sid = struct.unpack_from(">I", payload, 0)[0] & 0x7FFFFFFF
                    stream = Stream(self, sid, self._headers(payload[10:]))
                    self.streams[sid] = stream
                    if flags & FLAG_FIN:
                        stream._feed(b"", True)
                    t = asyncio.get_running_loop().create_task(self._on_stream(stream))
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)
                elif ftype == RST_STREAM:
                    stream = self.streams.pop(struct.unpack_from(">I", payload, 0)[0] & 0x7FFFFFFF, None)
                    if stream is not None:
                        stream.local_closed = True
                        stream._feed(b"", True)
                elif ftype == PING:
                    await self._send_control(PING, 0, payload)
                elif ftype == GOAWAY:
                    return
                elif ftype == HEADERS:
                    self._headers(payload[4:])  # keeps the decompressor in step; nothing to do
                # SETTINGS, WINDOW_UPDATE: no flow control on either side (see the docstring)
        finally:
            self.closed.set()
            for s in self.streams.values():
                s._feed(b"", True)
            for t in tasks:
                t.cancel()
