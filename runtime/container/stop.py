"""stop: end a container the way `docker stop` and the kubelet do — the stop signal, a grace
period, then SIGKILL to every process left in the container — and return its exit record.

Why both steps: the stop signal lets the program finish its work (flush, close connections);
but pid 1 of a pid namespace only receives signals it has a handler for (see kill.py), and a
program may ignore SIGTERM, so after `timeout` seconds everything in the container's cgroup gets
SIGKILL, which no process can refuse. The wait is on a pidfd of the init (poll() says readable when
the process has exited; it works for processes that are not our children), so no pid is polled
and a reused pid cannot be mistaken for the container.
"""

from __future__ import annotations

import os
import select
import signal

from runtime.container.kill import kill
from runtime.container.start import wait
from runtime.container.state import StateDir, process_start_time
from runtime.errors import InvalidState


def _init_pidfd(state) -> int | None:
    """A pidfd of the container's init if it is still the recorded process, else None."""
    pid, start = state.record.get("pid"), state.record.get("pid_start")
    if not pid or process_start_time(pid) != start:
        return None
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    if process_start_time(pid) != start:       # checked again: the pid may have been reused between
        os.close(fd)
        return None
    return fd


def stop(root: str, cid: str, sig: int = signal.SIGTERM, timeout: float = 10.0) -> dict:
    """Stop container `cid`: `sig`, up to `timeout` seconds, then SIGKILL. Returns the exit record
    (exitCode, reason, finishedAt, ...). A container that has already stopped is left as it is."""
    state = StateDir(root, cid).load()
    if state.status not in ("created", "running"):
        return wait(root, cid)
    fd = _init_pidfd(state)
    if fd is not None:
        try:
            try:
                kill(root, cid, sig)
            except InvalidState:
                pass                            # it exited just now
            if timeout > 0 and not select.select([fd], [], [], timeout)[0]:
                try:
                    kill(root, cid, signal.SIGKILL, all_processes=True)
                except InvalidState:
                    pass
        finally:
            os.close(fd)
    return wait(root, cid)
