"""Waiting for an event with a timeout, instead of sleeping: a line a child writes, a process's exit.

A sleep is either too short on a loaded machine (the test flakes) or too long on an idle one (the
suite crawls); these return as soon as the event has happened and fail, saying what was seen,
when it has not happened in time.
"""

from __future__ import annotations

import os
import select
import threading
import time


def wait_exit(pid: int, timeout: float = 10) -> None:
    """Return once process `pid` has exited (whoever its parent is: a pidfd turns readable when
    its process exits); AssertionError after `timeout` seconds."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        assert select.select([pidfd], [], [], timeout)[0], f"process {pid} still runs after {timeout} s"
    finally:
        os.close(pidfd)


class Lines:
    """A child's output (a text stream), read line by line on a thread, so that a test waits for
    the line that says something happened — with a timeout — instead of sleeping and hoping."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self.closed = False
        self._cond = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def wait_for(self, wanted, timeout: float = 30) -> str:
        """The first line for which wanted(line) is true, once it has been written."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = next((line for line in self.lines if wanted(line)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    raise AssertionError(f"no such line within {timeout} s; got:\n{''.join(self.lines)}")
                self._cond.wait(left)

    @property
    def text(self) -> str:
        with self._cond:
            return "".join(self.lines)


def poll_until(cond, timeout: float = 30, what: str = "", interval: float = 0.1):
    """Call cond() every `interval` seconds until it returns something truthy, and return that;
    AssertionError naming `what` and the last value when `timeout` seconds pass first. For state
    no event announces (an API object's status, a file appearing)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"not within {timeout} s: {what}; last: {last!r}")
