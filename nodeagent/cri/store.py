"""What the runtime side remembers about sandboxes and containers, on disk, so that a new agent
process (after a crash, an upgrade, `kill -9`) finds the same pods with the same IDs.

    <state_dir>/
      runtime/                  the runtime's own root: one state directory per container
                                (runtime/container/state.py: state.json, started.json, exit.json,
                                shim.sock), and the zygote's sockets
      storage/                  overlay upper/work directories, one per container
      cri/sandboxes/<id>/       sandbox.json (config, IP, namespaces), hostname, hosts,
                                resolv.conf, ns/{net,ipc,uts} (pinned namespaces: sandbox.py)
      cri/containers/<id>/      container.json (the CRI view: metadata, image, log path, labels)
                                and bundle/config.json (the OCI spec it was created from)

Who writes what: this module writes the two JSON records (atomically: a temporary file renamed
into place), the runtime's supervisors write exit.json and started.json. The records hold only
what cannot be derived: the container's state (created, running, exited), its exit code and
times are always read from the runtime's files, never copied here, so they cannot go stale while
the agent is away.

A record's "phase" is "creating" until the thing it describes exists for real; a record still
"creating" when a new service opens the state dir was left by a crash mid-create, and is cleaned
up (service.py).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from pathlib import Path

import localfs

_ID = re.compile(r"^[0-9a-f]{32}$")


def valid_id(text: str) -> bool:
    """An ID we could have made. Anything else names nothing here — and must never reach a path
    (an ID of "../.." handed to remove would otherwise name a directory above ours)."""
    return isinstance(text, str) and bool(_ID.match(text))


def new_id() -> str:
    """32 hex digits: unique, and short enough for a cgroup, a state directory and a CNI cache
    file name (CRI runtimes use 64; nothing needs that many here)."""
    return secrets.token_hex(16)


def creator() -> list:
    """[pid, start time] of this process: a record still "creating" whose creator is alive is
    being created right now, not left behind by a crash."""
    from runtime.container.state import process_start_time

    return [os.getpid(), process_start_time(os.getpid())]


def write_json(path: Path, obj: dict) -> None:
    # Not durable: the records describe containers, which do not outlive the machine (localfs).
    localfs.write_atomic(path, json.dumps(obj, indent=1) + "\n", durable=False)


def read_json(path: Path) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except ValueError:
        return None  # a torn file cannot happen (rename); an empty one from a full disk can


class Store:
    """Paths and records under one state directory. Stateless: every call reads the disk, so two
    service objects (the old agent's and the new one's, in a test) agree."""

    def __init__(self, state_dir: str | os.PathLike):
        self.root = Path(state_dir)
        self.runtime_root = self.root / "runtime"
        self.storage = self.root / "storage"
        self.sandboxes = self.root / "cri" / "sandboxes"
        self.containers = self.root / "cri" / "containers"

    def make_dirs(self) -> None:
        for d in (self.runtime_root, self.storage, self.sandboxes, self.containers):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o711)

    # --- sandboxes ---------------------------------------------------------------------------------
    def sandbox_dir(self, sid: str) -> Path:
        if not valid_id(sid):
            raise ValueError(f"not a sandbox ID: {sid!r}")
        return self.sandboxes / sid

    def sandbox(self, sid: str) -> dict | None:
        if not valid_id(sid):
            return None
        return read_json(self.sandbox_dir(sid) / "sandbox.json")

    def put_sandbox(self, sid: str, record: dict) -> None:
        write_json(self.sandbox_dir(sid) / "sandbox.json", record)

    def sandbox_ids(self) -> list[str]:
        return _ids(self.sandboxes)

    def drop_sandbox(self, sid: str) -> None:
        if valid_id(sid):
            shutil.rmtree(self.sandbox_dir(sid), ignore_errors=True)

    # --- containers --------------------------------------------------------------------------------
    def container_dir(self, cid: str) -> Path:
        if not valid_id(cid):
            raise ValueError(f"not a container ID: {cid!r}")
        return self.containers / cid

    def container(self, cid: str) -> dict | None:
        if not valid_id(cid):
            return None
        return read_json(self.container_dir(cid) / "container.json")

    def put_container(self, cid: str, record: dict) -> None:
        write_json(self.container_dir(cid) / "container.json", record)

    def container_ids(self) -> list[str]:
        return _ids(self.containers)

    def drop_container(self, cid: str) -> None:
        if valid_id(cid):
            shutil.rmtree(self.container_dir(cid), ignore_errors=True)


def _ids(d: Path) -> list[str]:
    try:
        return sorted(n for n in os.listdir(d) if _ID.match(n))
    except FileNotFoundError:
        return []
