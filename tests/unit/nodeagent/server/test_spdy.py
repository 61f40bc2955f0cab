"""The SPDY session on its own, for what kubectl's sessions rarely show in a short test: PING
(spdystream pings every 10 s and gives up on a session that does not answer), RST_STREAM, and a
stream opened already half-closed."""

from __future__ import annotations

import asyncio
import struct
import zlib

from nodeagent.server.spdy import DICTIONARY, FLAG_FIN, PING, RST_STREAM, SYN_REPLY, SYN_STREAM, Session


class Client:
    """Just enough of a SPDY client to talk to a Session through two queues."""

    def __init__(self):
        self.to_server: asyncio.Queue[bytes] = asyncio.Queue()
        self.from_server: list[bytes] = []
        self.deflate = zlib.compressobj(zdict=DICTIONARY)

    def control(self, ftype: int, flags: int, payload: bytes) -> None:
        self.to_server.put_nowait(struct.pack(">HHI", 0x8003, ftype, (flags << 24) | len(payload)) + payload)

    def syn(self, sid: int, headers: dict[str, str], fin: bool = False) -> None:
        block = struct.pack(">I", len(headers)) + b"".join(
            struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
            for k, v in headers.items())
        comp = self.deflate.compress(block) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.control(SYN_STREAM, FLAG_FIN if fin else 0, struct.pack(">IIBB", sid, 0, 0, 0) + comp)

    def data(self, sid: int, payload: bytes, fin: bool = False) -> None:
        self.to_server.put_nowait(struct.pack(">II", sid, ((FLAG_FIN if fin else 0) << 24) | len(payload)) + payload)

    def frames(self) -> list[tuple]:
        out, buf = [], b"".join(self.from_server)
        while buf:
            word, fl = struct.unpack(">II", buf[:8])
            payload, buf = buf[8:8 + (fl & 0xFFFFFF)], buf[8 + (fl & 0xFFFFFF):]
            out.append(("control", word & 0xFFFF, fl >> 24, payload) if word & 0x80000000 else
                       ("data", word, fl >> 24, payload))
        return out


def test_ping_reply_rst_and_fin():
    async def run():
        c = Client()
        seen = {}

        async def on_stream(stream):
            seen[stream.id] = stream
            await stream.reply()
            got = b""
            while chunk := await stream.read():
                got += chunk
            await stream.write(b"echo:" + got)
            await stream.close()

        async def write(frame: bytes) -> None:
            c.from_server.append(frame)

        session = Session(c.to_server.get, write, on_stream)
        runner = asyncio.ensure_future(session.run())
        c.control(PING, 0, struct.pack(">I", 7))
        c.syn(1, {"streamtype": "data", "port": "80"})
        c.data(1, b"abc")
        c.data(1, b"def", fin=True)
        c.syn(3, {"streamtype": "error"}, fin=True)     # the client's write side closed at once
        c.syn(5, {"streamtype": "data"})
        c.control(RST_STREAM, 0, struct.pack(">II", 5, 5))
        for _ in range(50):
            await asyncio.sleep(0.01)
        c.to_server.put_nowait(b"")                       # the connection ends
        await asyncio.wait_for(runner, 5)
        return seen, c.frames()

    seen, frames = asyncio.run(run())
    assert seen[1].headers == {"streamtype": "data", "port": "80"}
    assert ("control", PING, 0, struct.pack(">I", 7)) in frames
    replies = [struct.unpack(">I", f[3][:4])[0] for f in frames if f[:2] == ("control", SYN_REPLY)]
    assert sorted(replies) == [1, 3, 5]
    data1 = [f for f in frames if f[0] == "data" and f[1] == 1]
    assert data1[0][3] == b"echo:abcdef" and data1[-1][2] == FLAG_FIN
    assert [f[3] for f in frames if f[0] == "data" and f[1] == 3] == [b"echo:", b""]
    assert [f for f in frames if f[0] == "data" and f[1] == 5] == [], "nothing after RST_STREAM"
