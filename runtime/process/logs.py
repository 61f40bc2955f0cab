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
"""

from __future__ import annotations

import os
import time

MAX_LINE = 16 * 1024


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
