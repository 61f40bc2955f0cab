"""Files a container's processes share: written whole or not at all, read back, removed, and
the start time that tells a live process from a reused pid.

Below both process/ (the supervisor writes started.json and exit.json, and removes a --rm
container's directories) and container/ (state.json, and everything that reads them): a helper
used by two layers lives under both. container/state.py says what each file holds.

May import: the standard library only.
"""

from __future__ import annotations

import json
import os


def write_atomic(path: str, obj: dict) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, json.dumps(obj, indent=1).encode() + b"\n")
    finally:
        os.close(fd)
    os.rename(tmp, path)


def remove_tree(path: str) -> None:
    """rm -rf `path` (never following symlinks out of it). Like shutil.rmtree, without importing
    shutil, which loads the bz2 and lzma libraries — milliseconds on a container's way out."""
    try:
        walk = list(os.walk(path, topdown=False))
    except OSError:
        return
    for directory, dirs, files in walk:
        for name in files:
            try:
                os.unlink(os.path.join(directory, name))
            except FileNotFoundError:
                pass
        for name in dirs:
            full = os.path.join(directory, name)
            try:
                os.rmdir(full) if not os.path.islink(full) else os.unlink(full)
            except FileNotFoundError:
                pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def read_json(path: str) -> dict | None:
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def process_start_time(pid: int) -> int | None:
    """Field 22 (starttime, in clock ticks since boot) of /proc/<pid>/stat; None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may itself contain spaces or ')'.
    fields = raw[raw.rindex(b")") + 2:].split()
    if fields[0] == b"Z":  # a zombie has exited; it only waits for its parent to reap it
        return None
    return int(fields[19])
