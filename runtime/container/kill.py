"""kill: send a signal to a container's init (or, with all=True, to every process in its cgroup).

The init is signalled through a pidfd opened after checking the pid's start time against the one
recorded at create, and checked once more after opening: a plain kill(pid) could hit an unrelated
process that reused the number after the container died.

Remember what pid 1 means: the kernel delivers a signal to a pid namespace's init only if the init
has a handler for it (SIGKILL and SIGSTOP from outside excepted). `kill <id> TERM` to a container
running `sleep` does nothing — as with runc and Docker; that is why images use an init like tini.
"""

from __future__ import annotations

import os
import signal

from runtime.container.state import StateDir, process_start_time
from runtime.errors import ContainerError, InvalidState


def parse_signal(name: str | int) -> int:
    if isinstance(name, int) or str(name).isdigit():
        return int(name)
    key = str(name).upper()
    key = key if key.startswith("SIG") else "SIG" + key
    try:
        return int(signal.Signals[key])
    except KeyError:
        raise ContainerError(f"unknown signal {name!r}") from None


def kill(root: str, cid: str, sig: int | str = signal.SIGTERM, all_processes: bool = False) -> None:
    d = StateDir(root, cid)
    state = d.load()
    if state.status not in ("created", "running"):
        raise InvalidState(cid, state.status, "there is no process to signal")
    signum = parse_signal(sig)
    rec = state.record
    if all_processes:
        from runtime.cgroups import load_cgroup
        for pid in load_cgroup(rec["cgroup"]).procs():
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
        return
    pid, start = rec["pid"], rec["pid_start"]
    if process_start_time(pid) != start:
        raise InvalidState(cid, "stopped", "there is no process to signal")
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        raise InvalidState(cid, "stopped", "there is no process to signal") from None
    try:
        if process_start_time(pid) != start:
            raise InvalidState(cid, "stopped", "there is no process to signal")
        signal.pidfd_send_signal(pidfd, signum)
    except ProcessLookupError:
        raise InvalidState(cid, "stopped", "there is no process to signal") from None
    finally:
        os.close(pidfd)
