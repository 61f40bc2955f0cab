"""Files a container's processes share: written whole or not at all, read back, removed, and
the start time that tells a live process from a reused pid.

Below both process/ (the supervisor writes started.json and exit.json, and removes a --rm
container's directories) and container/ (state.json, and everything that reads them): a helper
used by two layers lives under both. container/state.py says what each file holds.

Writing and removing go through localfs (the one atomic, durable write and the one rm -rf of the
whole project); what is left here is what is particular to a container's files: JSON, mode 0600.

May import: localfs, the standard library.
"""

from __future__ import annotations

import json

import localfs
from localfs import remove_tree  # noqa: F401  (the state files' users import it from here)


def write_atomic(path: str, obj: dict) -> None:
    # Not durable: a container's state dies with the machine (localfs says why that is right).
    localfs.write_atomic(path, json.dumps(obj, indent=1).encode() + b"\n", 0o600, durable=False)


def read_json(path: str) -> dict | None:
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


# /proc/<pid>/stat is read here, and only here. Not through psutil (a dependency, used for the
# node's figures): importing it costs ~16 ms, and these are read on every container start and
# every `state`; reading the file is 0.02 ms a call, psutil's Process().create_time() 0.09 ms.

def _proc_stat(pid: int | str) -> list[bytes] | None:
    """/proc/<pid>/stat's fields from the third (state) on: index i is field i + 3 of proc(5)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may itself contain spaces or ')'.
    return raw[raw.rindex(b")") + 2:].split()


def process_start_time(pid: int) -> int | None:
    """Field 22 (starttime, in clock ticks since boot) of /proc/<pid>/stat; None if gone."""
    fields = _proc_stat(pid)
    if fields is None or fields[0] == b"Z":  # a zombie has exited; it waits for its parent to reap it
        return None
    return int(fields[19])


def thread_count() -> int:
    """This process's threads (field 20 of /proc/self/stat)."""
    return int(_proc_stat("self")[17])
