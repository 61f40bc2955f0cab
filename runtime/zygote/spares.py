"""Spare workers: the zygote forks its next workers *before* their requests arrive.

Why. A worker forked from the zygote shares the zygote's memory copy-on-write: every page it
writes for the first time — and a Python process writes to every object it touches, if only to
count a reference — costs a page fault and a 4 KiB copy (~2.5 µs here). Creating a container
touches ~750 such pages in the worker: ~2 ms, plus ~0.6 ms for the fork itself, all while the
user waits. A spare is forked ahead of time and runs `warm_up` — the request path's pure steps on
sample data (runtime/container/warmup.py) — so that those pages are already its own when a
request comes; then it waits. Android's zygote keeps such a pool for apps (its "USAP pool":
unspecialized app processes). (The node's zygote passes no warm-up: its workers become
long-lived supervisors, whose every private page is paid per container — server.py, "lean
supervisors".)

How. The zygote stops accepting connections itself. Each spare waits on the listening sockets
(`selectors`); the one that wins `accept` (they are non-blocking: the others get EAGAIN and wait
again) tells the zygote over its pipe — one byte, "taken" — and becomes that request's worker.
The zygote then forks a replacement. A spare that dies without a request closes its pipe (EOF),
and is replaced too, though not faster than once a second if spares keep dying (a broken
warm-up must not turn into a fork loop).

Lifetimes. An idle spare has PR_SET_PDEATHSIG(SIGKILL): stopping the zygote stops its spares,
which would otherwise keep the listening sockets open for nobody. A spare that has taken a
request clears it at once: a worker becomes a container's supervisor and must outlive the zygote.

Who owns what: the pool owns the read ends of the spares' pipes; each spare owns its write end.
The listening sockets belong to the zygote (a spare closes its copies once it has a request).
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable

# A worker's job: (the accepted connection, the listener it came from) → never returns.
Serve = Callable[[socket.socket, socket.socket], None]


class SparePool:
    def __init__(self, listeners: list[socket.socket], size: int, warm_up: Callable[[], None],
                 serve: Serve, sys=None):
        from runtime.sys import real

        self.listeners, self.size, self.warm_up, self.serve = listeners, size, warm_up, serve
        self.sys = sys or real()
        self.pipes: set[int] = set()          # read ends of the spares' pipes, one per spare
        self.last_death = 0.0                 # when a spare last died without a request
        for sock in listeners:
            sock.setblocking(False)           # spares race for each connection: see accept()

    def fill(self) -> None:
        """Fork spares until there are `size` of them. A fork that fails (EAGAIN: the machine is
        out of processes or memory) is retried by run() a second later, not fatal."""
        zygote = os.getpid()
        while len(self.pipes) < self.size:
            for stream in (sys.stdout, sys.stderr):
                if stream is not None:
                    stream.flush()            # what we buffered must not be written twice
            try:
                r, w = os.pipe2(os.O_CLOEXEC)
                try:
                    pid = os.fork()
                except OSError:
                    os.close(r)
                    os.close(w)
                    raise
            except OSError as e:
                print(f"zygote: cannot fork a spare worker: {e}", file=sys.stderr)
                return
            if pid == 0:
                os.close(r)
                for fd in self.pipes:
                    os.close(fd)              # the other spares' pipes are the zygote's business
                self._spare(w, zygote)        # never returns
            os.close(w)
            self.pipes.add(r)

    def run(self) -> None:
        """The zygote's loop from now on: keep the pool full. Never returns."""
        with selectors.DefaultSelector() as sel:
            while True:
                for fd in self.pipes:
                    if fd not in sel.get_map():
                        sel.register(fd, selectors.EVENT_READ)
                short = len(self.pipes) < self.size   # a fork failed: try again in a second
                for key, _ in sel.select(timeout=1.0 if short else None):
                    sel.unregister(key.fd)
                    self.event(key.fd)
                if short:
                    self.fill()

    def event(self, fd: int) -> None:
        """A spare's pipe is readable: it took a request, or it died. Either way it is no longer
        a spare; fork its replacement (if spares die on their own, at most once a second)."""
        taken = os.read(fd, 1) == b"t"
        os.close(fd)
        self.pipes.remove(fd)
        if not taken:
            wait = self.last_death + 1.0 - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self.last_death = time.monotonic()
        self.fill()

    # --- in the spare ------------------------------------------------------------------------------
    def _spare(self, taken: int, zygote: int) -> None:
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the zygote ignores it; a worker must not
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the zygote's handler removes its files
            self.sys.set_pdeathsig(signal.SIGKILL)
            if os.getppid() != zygote:
                os._exit(0)                   # the zygote died before we could ask to follow it
            self.warm_up()
            sock, listener = self._accept()
            os.write(taken, b"t")
            os.close(taken)
            self.sys.set_pdeathsig(0)         # a worker now: it must outlive the zygote
            for other in self.listeners:
                other.close()
            sock.setblocking(True)
            self.serve(sock, listener)
        finally:
            os._exit(0)

    def _accept(self) -> tuple[socket.socket, socket.socket]:
        with selectors.DefaultSelector() as sel:
            for sock in self.listeners:
                sel.register(sock, selectors.EVENT_READ)
            while True:
                for key, _ in sel.select():
                    try:
                        conn, _ = key.fileobj.accept()
                    except (BlockingIOError, InterruptedError):
                        continue              # another spare was quicker
                    return conn, key.fileobj
