"""containerLogs: a container's output, read back from its CRI log file.

The runtime writes every line a container prints to ContainerStatus.log_path, one record a line
(the CRI logging format, kubelet pkg/kubelet/kuberuntime/logs):

    2026-12-06T01:02:03.123456789Z stdout F hello world
    <RFC3339Nano time>             <stream> <tag> <content>

The tag is F for a full line or P for a partial one (a line longer than the runtime's buffer,
continued by the next record); the newline of an F record is not stored in <content> but was
printed by the container. So the container's own output is the contents joined, a newline after
each F — and that is what we serve, optionally prefixed by the record's time (`timestamps`).

Options (PodLogOptions, as `kubectl logs` sends them):
  previous        the container instance before the last restart (pods.py finds its id)
  tailLines N     only the last N lines; we scan the file backwards for them
  sinceSeconds / sinceTime   only records at or after that time
  limitBytes N    stop after N bytes of output
  timestamps      prefix every line with its time
  follow          keep the response open and send new lines as they are written, until the
                  container stops. We look for new bytes on a short timer (WAKE) rather than
                  with inotify: a follow costs a few wake-ups a second and no extra fds.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from nodeagent.server.errors import bad_request
# The format, read back: with its writer (runtime/process/logs.py), and shared with `nodeagent logs`.
from runtime.process.logs import BLOCK, Record, parse_record, tail_offset  # noqa: F401

WAKE = 0.1            # seconds between looks at a followed file
CHECK_RUNNING = 1.0   # seconds between asking the runtime whether the container still runs


def _parse_time(value: str, field: str) -> float:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise bad_request(f'{field}: Invalid value: "{value}": must be RFC3339') from None


def _int(q, name: str, minimum: int) -> int | None:
    v = q.get(name)
    if v in (None, ""):
        return None
    try:
        n = int(v)
    except ValueError:
        raise bad_request(f'{name}: Invalid value: "{v}": must be an integer') from None
    if n < minimum:
        raise bad_request(f"{name}: Invalid value: {n}: must be greater than or equal to {minimum}")
    return n


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    previous: bool = False
    tail_lines: int | None = None
    since: float | None = None      # seconds since the epoch
    timestamps: bool = False
    limit_bytes: int | None = None

    @classmethod
    def from_query(cls, q) -> LogOptions:
        def flag(name: str) -> bool:
            return q.get(name, "").lower() in ("1", "true")
        since_seconds = _int(q, "sinceSeconds", 1)
        since_time = q.get("sinceTime")
        if since_seconds is not None and since_time:
            raise bad_request("at most one of sinceTime or sinceSeconds may be specified")
        since = (time.time() - since_seconds if since_seconds is not None else
                 _parse_time(since_time, "sinceTime") if since_time else None)
        return cls(flag("follow"), flag("previous"), _int(q, "tailLines", 0), since,
                   flag("timestamps"), _int(q, "limitBytes", 1))


class _Formatter:
    """Records → the bytes a user sees, honouring since, timestamps and limitBytes."""

    def __init__(self, opts: LogOptions):
        self.opts = opts
        self.sent = 0
        self.at_line_start = True

    @property
    def full(self) -> bool:
        return self.opts.limit_bytes is not None and self.sent >= self.opts.limit_bytes

    def render(self, rec: Record) -> bytes:
        if self.opts.since is not None and rec.epoch < self.opts.since:
            return b""
        out = rec.content if rec.partial else rec.content + b"\n"
        if self.opts.timestamps and self.at_line_start:
            out = rec.time.encode() + b" " + out
        self.at_line_start = not rec.partial
        if self.opts.limit_bytes is not None:
            out = out[:self.opts.limit_bytes - self.sent]
        self.sent += len(out)
        return out


async def stream_file(path: str, opts: LogOptions, write: Callable[[bytes], Awaitable[None]],
                      running: Callable[[], Awaitable[bool]]) -> None:
    """Send the log at `path` through `write`; with follow, until `running()` turns False."""
    fmt = _Formatter(opts)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        if not opts.follow:
            return
        raise bad_request(f"log file {path} does not exist yet") from None
    with f:
        if opts.tail_lines is not None:
            f.seek(await asyncio.to_thread(tail_offset, path, opts.tail_lines))
        pending = b""
        next_check = 0.0
        while not fmt.full:
            chunk = f.read(BLOCK)
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                out = b"".join(fmt.render(r) for r in map(parse_record, lines) if r is not None)
                if out:
                    await write(out)
                continue
            if not opts.follow:
                return
            now = time.monotonic()
            if now >= next_check:
                next_check = now + CHECK_RUNNING
                if not await running():
                    # Whatever the container wrote before it stopped is in the file now.
                    if not f.read(1):
                        return
                    f.seek(-1, os.SEEK_CUR)
                    continue
            await asyncio.sleep(WAKE)
