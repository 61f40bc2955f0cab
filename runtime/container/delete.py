"""delete: remove a container and everything it had — processes, cgroup, overlay dirs, state.

A stopped or created container is deleted as is (a created one is killed first, as runc does);
a running one only with force=True. Killing goes through the cgroup (cgroup.kill, or the v1
freezer), which reaches every process of the container, not only its init. We then wait for the
supervisor to record the exit and leave, so that exit.json is complete before it is removed and
the cgroup is empty before rmdir.

Deleting is idempotent in effect: whatever is already gone is skipped, and a directory left by an
interrupted create (state "creating") is cleaned up from the paths recorded in it.
"""

from __future__ import annotations

import os
import select

from runtime.container.state import StateDir, alive, remove_tree
from runtime.errors import InvalidState


def _wait_gone(pid: int | None, start: int | None, timeout: float) -> bool:
    if not alive(pid, start):
        return True
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        if not alive(pid, start):
            return True
        ready, _, _ = select.select([pidfd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(pidfd)


def delete(root: str, cid: str, force: bool = False) -> None:
    from runtime.cgroups import load_cgroup

    d = StateDir(root, cid)
    state = d.load()
    rec = state.record
    if state.status == "running" and not force:
        raise InvalidState(cid, "running", "stop it first, or delete with --force")
    if state.status == "creating" and alive(rec.get("creator"), rec.get("creator_start")) and not force:
        raise InvalidState(cid, "creating", "it is being created; delete with --force")
    cgroup = load_cgroup(rec["cgroup"]) if "cgroup" in rec else None
    if state.status in ("created", "running") and cgroup is not None:
        cgroup.kill_all()
        if not _wait_gone(rec.get("shim_pid"), rec.get("shim_start"), 10):
            os.kill(rec["shim_pid"], 9)  # verified alive with its start time just above
            _wait_gone(rec.get("shim_pid"), rec.get("shim_start"), 5)
    elif state.status == "creating" and cgroup is None and rec.get("cgroupsPath"):
        cgroup = _planned_cgroup(rec["cgroupsPath"])
        if cgroup is not None:
            cgroup.kill_all()
    if cgroup is not None:
        cgroup.destroy()
    if rec.get("host_rootfs"):
        from runtime.rootfs.mounts import detach_root
        from runtime.sys import real
        detach_root(real(), rec["host_rootfs"])
    if rec.get("storage"):
        remove_tree(rec["storage"])
    remove_tree(d.path)
    if rec.get("poststop"):
        _poststop(rec)


def _poststop(rec: dict) -> None:
    """The poststop hooks, after the container is gone and before delete returns; a failing one
    is a warning (hooks.py)."""
    import sys

    from runtime.process.hooks import state_bytes, warn_hooks
    from runtime.spec.bundle import hooks_from_dict

    hooks = hooks_from_dict({"poststop": rec["poststop"]}).poststop
    state = state_bytes(rec.get("ociVersion", "1.0.2"), rec["id"], "stopped", None,
                        rec.get("bundle", ""), rec.get("annotations", {}))
    for warning in warn_hooks(hooks, "poststop", state):
        print(f"warning: {warning}", file=sys.stderr)


def _planned_cgroup(path: str):
    """The cgroup a "creating" record planned, if it was made (for cleaning up after a crash)."""
    from pathlib import Path

    from runtime.cgroups import CgroupError, load_cgroup
    from runtime.cgroups.base import locate
    from runtime.cgroups.layout import detect

    layout = detect()
    dirs = {}
    try:
        if layout.unified is not None:
            base, rel = locate(layout.unified, path, path)
            dirs["unified"] = base / rel
        for h in layout.v1.values():
            base, rel = locate(h, path, path)
            dirs[h.mountpoint.name] = base / rel
    except CgroupError:
        return None
    dirs = {k: v for k, v in dirs.items() if Path(v).is_dir()}
    if not dirs:
        return None
    version = 2 if set(dirs) == {"unified"} and not layout.v1 else 1
    return load_cgroup({"version": version, "dirs": {k: str(v) for k, v in dirs.items()}})
