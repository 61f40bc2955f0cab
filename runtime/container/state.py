"""A container's state on disk, and how its OCI status is worked out from it.

Each container has a directory <root>/<id>/ (root: /run/nodeagent/runtime by default, a tmpfs, like
runc's /run/runc). Its files, and who writes each one:

    state.json    the creator: first as "creating" (so an interrupted create can still be cleaned
                  up), then complete — pids, cgroup, bundle, rootfs — once the container is created
    started.json  the supervisor, when the container's program has been exec'd: the start time
    exit.json     the supervisor, when the container's init has exited: exit code, signal, OOM kill,
                  start and finish times. Written even if nobody is listening — the point of having
                  a supervisor
    shim.sock     the supervisor's socket (start, exec, wait)
    container.log the supervisor: stdout/stderr in CRI format (unless the caller took the stdio)

Every file is written whole to a temporary name and renamed into place (rename(2) is atomic), so a
reader — or a crash at any moment — sees the old file or the new one, never half of one.

The status (OCI: creating, created, running, stopped) is *derived*, never stored: stored status would
go stale when a process dies while nobody is watching. Derivation:

    exit.json present                                → stopped (with its exit code)
    state.json says creating                         → creating
    supervisor and init alive, started.json present  → running
    supervisor and init alive, no started.json       → created
    otherwise (the supervisor was killed)            → stopped, exit code unknown

"Alive" compares each pid's start time (field 22 of /proc/<pid>/stat) with the one recorded at
create: a pid number can be reused by an unrelated process; a (pid, start time) pair cannot.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field

from runtime.errors import ContainerNotFound, SpecError
# The file helpers live below process/ (whose supervisor writes these files too); imported here
# under their old names, which callers still use.
from runtime.statefiles import process_start_time, read_json, remove_tree, write_atomic  # noqa: F401

DEFAULT_ROOT = "/run/nodeagent/runtime"
DEFAULT_STORAGE = "/var/lib/nodeagent/runtime"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_id(cid: str) -> None:
    if not _ID.match(cid):
        raise SpecError("id", f"{cid!r} is not a valid container id (letters, digits, '_', '.', '-'; "
                        "at most 128; not starting with a punctuation mark)")


def alive(pid: int | None, start: int | None) -> bool:
    return bool(pid) and start is not None and process_start_time(pid) == start


@dataclass(frozen=True)
class ContainerState:
    id: str
    status: str
    bundle: str
    rootfs: str
    pid: int = 0
    created: str = ""
    annotations: dict = field(default_factory=dict)
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    oom_killed: bool = False
    reason: str | None = None
    record: dict = field(default_factory=dict)   # state.json as written

    def to_oci(self) -> dict:
        """What `runc state` prints (the OCI state), plus our exit details."""
        out = {"ociVersion": "1.0.2", "id": self.id, "pid": self.pid if self.status in ("created", "running") else 0,
               "status": self.status, "bundle": self.bundle, "rootfs": self.rootfs,
               "created": self.created, "owner": "", "annotations": self.annotations}
        if self.started_at:
            out["startedAt"] = self.started_at
        if self.status == "stopped":
            out.update(finishedAt=self.finished_at, exitCode=self.exit_code, reason=self.reason,
                       oomKilled=self.oom_killed)
            if self.signal:
                out["signal"] = self.signal
        return out


class StateDir:
    """The directory of one container; paths only, no caching (other processes write here)."""

    def __init__(self, root: str, cid: str):
        check_id(cid)
        self.root, self.id = root, cid
        self.path = os.path.join(root, cid)

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def socket(self) -> str:
        return self.file("shim.sock")

    def exists(self) -> bool:
        return os.path.isdir(self.path)

    def load(self) -> ContainerState:
        record = read_json(self.file("state.json"))
        if record is None:
            if not self.exists():
                raise ContainerNotFound(self.id)
            record = {"id": self.id, "status": "creating"}
        exit_rec = read_json(self.file("exit.json"))
        started = read_json(self.file("started.json"))
        base = dict(id=self.id, bundle=record.get("bundle", ""), rootfs=record.get("rootfs", ""),
                    pid=record.get("pid", 0), created=record.get("created", ""),
                    annotations=record.get("annotations", {}), record=record,
                    started_at=(started or {}).get("startedAt"))
        if exit_rec is None and record.get("status") == "creating":
            return ContainerState(status="creating", **base)
        if exit_rec is None:
            shim_ok = alive(record.get("shim_pid"), record.get("shim_start"))
            if shim_ok and alive(record.get("pid"), record.get("pid_start")):
                return ContainerState(status="running" if started else "created", **base)
            # init has gone: the supervisor is writing exit.json (or was killed). Give it a moment.
            deadline = time.monotonic() + 2.0
            while (exit_rec := read_json(self.file("exit.json"))) is None and shim_ok \
                    and time.monotonic() < deadline:
                time.sleep(0.002)
                shim_ok = alive(record.get("shim_pid"), record.get("shim_start"))
            if exit_rec is None:
                exit_rec = read_json(self.file("exit.json"))
        if exit_rec is None:
            return ContainerState(status="stopped", reason="the supervisor died; exit status unknown", **base)
        return ContainerState(status="stopped", finished_at=exit_rec.get("finishedAt"),
                              exit_code=exit_rec.get("exitCode"), signal=exit_rec.get("signal"),
                              oom_killed=exit_rec.get("oomKilled", False),
                              reason=exit_rec.get("reason"), **base)


def list_ids(root: str) -> list[str]:
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if _ID.match(n) and os.path.isdir(os.path.join(root, n)))


def list_containers(root: str) -> list[ContainerState]:
    """The state of every container under `root` (a half-removed directory is skipped)."""
    out = []
    for cid in list_ids(root):
        try:
            out.append(StateDir(root, cid).load())
        except Exception:  # noqa: BLE001
            continue
    return out
