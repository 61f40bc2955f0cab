"""Spare workers (runtime/zygote/spares.py): forked and warmed before their requests, one
request each, replaced when taken or dead, gone with their zygote — real forks, no root needed."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.waits import Lines

REPO = Path(__file__).resolve().parents[4]

# A small zygote: a pool of 2 spares whose "serve" answers with the worker's pid and the time it
# was forked (so a test can tell it existed before the request), whose warm-up can be made to fail,
# and which prints "warm PID" when a spare is ready (so a test waits for that line, not a while).
ZYGOTE = textwrap.dedent("""
    import os, selectors, socket, sys, time
    from runtime.process.channel import listen
    from runtime.zygote.spares import SparePool

    path, fail_marker = sys.argv[1], sys.argv[2]
    forked_at = {}

    def warm_up():
        if os.path.exists(fail_marker):
            raise RuntimeError("a broken warm-up")
        os.write(1, f"warm {os.getpid()}\\n".encode())   # one write: spares print at once

    def serve(conn, listener):
        conn.send(f"{os.getpid()} {forked_at['t']}".encode())
        conn.recv(1)                           # wait until the client has read it
        conn.close()

    listener = listen(path)
    real_fork = os.fork
    def fork():                                # record, in the child, when it was forked
        t = time.monotonic()
        pid = real_fork()
        if pid == 0:
            forked_at["t"] = t
        return pid
    os.fork = fork
    pool = SparePool([listener], 2, warm_up, serve)
    pool.fill()
    os.write(1, b"ready\\n")                  # one write each, as the spares
    sel = selectors.DefaultSelector()
    while True:
        for fd in list(pool.pipes):
            try:
                sel.register(fd, selectors.EVENT_READ)
            except KeyError:
                pass
        for key, _ in sel.select():
            sel.unregister(key.fd)
            pool.event(key.fd)
""")


def _start(tmp_path):
    sock = tmp_path / "z.sock"
    proc = subprocess.Popen([sys.executable, "-c", ZYGOTE, str(sock), str(tmp_path / "fail")],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    out = Lines(proc.stdout)
    out.wait_for(lambda line: line == "ready\n")
    return proc, sock, out


def _warm(out: Lines, count: int) -> list[int]:
    """The pids of the first `count` spares to be warm, once they are."""
    out.wait_for(lambda line: sum(w.startswith("warm ") for w in out.lines) >= count)
    return [int(w.split()[1]) for w in out.lines if w.startswith("warm ")][:count]


def _ask(sock: Path) -> tuple[int, float, float]:
    asked = time.monotonic()
    c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    c.connect(str(sock))
    pid, forked = c.recv(100).decode().split()
    c.send(b"k")
    c.close()
    return int(pid), float(forked), asked


def _children(pid: int, zombies: bool = False) -> set[int]:
    out = set()
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{p}/stat").read()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and (zombies or state != "Z"):
            out.add(int(p))
    return out


def test_each_request_gets_a_spare_forked_before_it_and_the_pool_refills(tmp_path):
    proc, sock, out = _start(tmp_path)
    try:
        _warm(out, 2)
        seen = []
        for i in range(5):
            pid, forked, asked = _ask(sock)
            assert forked < asked                  # the worker existed before the request
            seen.append(pid)
            warm = _warm(out, 3 + i)               # a new spare has replaced it
            assert len(set(warm) - set(seen)) == 2
        assert len(set(seen)) == 5                 # one request per worker
    finally:
        proc.kill()                                # the zygote this test started (its pid)
        proc.wait()


def test_idle_spares_end_with_their_zygote(tmp_path):
    proc, sock, out = _start(tmp_path)
    spares = _warm(out, 2)
    pidfds = [os.pidfd_open(p) for p in spares]    # opened while they run: no pid reuse to fear
    proc.kill()
    proc.wait()
    for fd in pidfds:
        wait_fd = select.select([fd], [], [], 10)[0]
        os.close(fd)
        assert wait_fd                             # that spare has exited


def test_spares_that_keep_dying_are_replaced_at_most_once_a_second(tmp_path):
    (tmp_path / "fail").touch()
    proc, sock, out = _start(tmp_path)
    try:
        time.sleep(2.5)                            # (this test measures a rate: a time window)
        # Count forks: each failing spare lives for milliseconds; its pid is new each time.
        forks = 0
        seen = _children(proc.pid, zombies=True)   # (dead spares stay zombies: nobody reaps here)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            new = _children(proc.pid, zombies=True) - seen
            forks += len(new)
            seen |= new
            time.sleep(0.002)
        assert forks <= 4, forks                   # not a fork loop
        (tmp_path / "fail").unlink()               # the warm-up works again: service resumes
        _warm(out, 2)
        _, forked, asked = _ask(sock)
        assert forked < asked                      # served by a spare, forked ahead again
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
