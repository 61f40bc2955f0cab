"""Container logs in the CRI format the kubelet reads, with size-based rotation.

Each line of the file is

    <RFC3339Nano timestamp> <stdout|stderr> <P|F> <content>

F marks the end of a line the program wrote ("full"); P a piece of a longer line that had to be
cut ("partial", here at 16 KiB, as containerd does), so a reader can join the pieces again. This is
the format `kubectl logs` ultimately reads (kubelet's pkg/kubelet/kuberuntime/logs).

Who writes: the supervisor, the only reader of the container's stdout/stderr pipes. Owning the
pipes is what lets output survive the agent's restarts: nobody else needs to be there to read.

Rotation: when a write would take the file past `max_bytes`, it is renamed to <path>.1 (older ones
shift to .2, ... and the oldest beyond `max_files` is dropped) and a new file is started; a reader
holding the old file open keeps reading it to its end.

Who reads: the kubelet API's containerLogs (nodeagent/server/logs.py, asynchronously) and
`nodeagent logs` (`read_records`); both parse records with `parse_record` below.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

MAX_LINE = 16 * 1024
BLOCK = 64 * 1024


def rfc3339nano(ns: int | None = None) -> str:
    """Go's time.RFC3339Nano in UTC: trailing zeros of the fraction dropped, as Go prints it."""
    ns = time.time_ns() if ns is None else ns
    sec, frac = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    fraction = f"{frac:09d}".rstrip("0")
    return f"{stamp}.{fraction}Z" if fraction else f"{stamp}Z"


class CriLog:
    def __init__(self, path: str, max_bytes: int = 10 << 20, max_files: int = 5):
        self.path, self.max_bytes, self.max_files = path, max_bytes, max_files
        self._pending: dict[str, bytes] = {"stdout": b"", "stderr": b""}
        self.fd = self._open()
        self.size = os.fstat(self.fd).st_size

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def write(self, stream: str, data: bytes) -> None:
        """Feed bytes read from `stream`; complete lines (and over-long pieces) are written now."""
        buf = self._pending[stream] + data
        lines = buf.split(b"\n")
        self._pending[stream] = lines.pop()
        for line in lines:
            while len(line) > MAX_LINE:
                self._emit(stream, line[:MAX_LINE], b"P")
                line = line[MAX_LINE:]
            self._emit(stream, line, b"F")
        while len(self._pending[stream]) >= MAX_LINE:
            piece, self._pending[stream] = self._pending[stream][:MAX_LINE], self._pending[stream][MAX_LINE:]
            self._emit(stream, piece, b"P")

    def end(self, stream: str) -> None:
        """The stream reached EOF: a last line without a newline is still a whole line."""
        if self._pending[stream]:
            self._emit(stream, self._pending[stream], b"F")
            self._pending[stream] = b""

    def _emit(self, stream: str, content: bytes, tag: bytes) -> None:
        record = b" ".join((rfc3339nano().encode(), stream.encode(), tag, content)) + b"\n"
        if self.size and self.size + len(record) > self.max_bytes:
            self._rotate()
        os.write(self.fd, record)
        self.size += len(record)

    def _rotate(self) -> None:
        os.close(self.fd)
        for i in range(self.max_files - 1, 0, -1):
            older = f"{self.path}.{i}"
            if os.path.exists(older):
                if i + 1 >= self.max_files:
                    os.unlink(older)
                else:
                    os.rename(older, f"{self.path}.{i + 1}")
        os.rename(self.path, f"{self.path}.1")
        self.fd = self._open()
        self.size = 0

    def close(self) -> None:
        for stream in self._pending:
            self.end(stream)
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# --- reading ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Record:
    time: str           # as written, RFC3339Nano
    stream: str         # stdout | stderr
    partial: bool
    content: bytes

    @property
    def epoch(self) -> float:
        from datetime import datetime  # only readers need it, never the supervisor that writes

        return datetime.fromisoformat(self.time.replace("Z", "+00:00")).timestamp()


def parse_record(line: bytes) -> Record | None:
    """One line of a CRI log file (without its newline); None if it is not one."""
    parts = line.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr"):
        return None
    if len(parts) == 3:  # an empty line written as "<time> stdout F"
        parts.append(b"")
    return Record(parts[0].decode(), parts[1].decode(), parts[2] == b"P", parts[3])


def tail_offset(path: str, lines: int) -> int:
    """The file offset where the last `lines` records begin, scanning back a block at a time."""
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        if lines == 0:
            return end
        seen = 0
        f.seek(max(0, end - 1))
        if f.read(1) == b"\n":     # the newline that ends the last record does not start one
            pos_last = end - 1
        else:
            pos_last = end
        pos = pos_last
        while pos > 0:
            start = max(0, pos - BLOCK)
            f.seek(start)
            block = f.read(pos - start)
            i = len(block)
            while (i := block.rfind(b"\n", 0, i)) != -1:
                seen += 1
                if seen == lines:
                    return start + i + 1
            pos = start
        return 0


def read_records(path: str, *, tail: int | None = None, follow: bool = False,
                 running: Callable[[], bool] = lambda: False, wake: float = 0.1) -> Iterator[Record]:
    """The records of the log at `path` (the last `tail` only, if given); with `follow`, then
    those written later too, until `running()` says the writer is gone — whatever it wrote before
    it went is read first. New bytes are looked for every `wake` seconds (as the kubelet API does:
    a few wake-ups a second, no inotify fd). Blocking: for a CLI, not an event loop."""
    with open(path, "rb") as f:
        if tail is not None:
            f.seek(tail_offset(path, tail))
        pending = b""
        while True:
            chunk = f.read(BLOCK)
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                yield from (r for r in map(parse_record, lines) if r is not None)
                continue
            if not follow:
                return
            if not running():
                if not f.read(1):
                    return
                f.seek(-1, os.SEEK_CUR)
                continue
            time.sleep(wake)
