"""Which cgroup controllers can *we* use? Prove it by making a child cgroup under our own.

"The kernel has a memory controller" is not the question a node agent needs answered; "can I create a
cgroup below mine and set a memory limit in it" is. This module answers it the only honest way:
it creates `<own cgroup>/nodeagent-probe-<pid>` in each hierarchy, checks that the controller's key
file exists there and takes a write, and removes the directory again. Nothing else is touched, and
nothing is left behind even when a step fails.

v1 (and the v1 half of hybrid): each controller has its own hierarchy. The write test writes back
the value the new, empty cgroup already has (for example memory.limit_in_bytes = its default), which
changes nothing but proves the file is writable.

v2: a controller is usable below us when it is in our cgroup.controllers and we may enable it in our
cgroup.subtree_control. The "no internal processes" rule forbids that in a non-root cgroup that has
processes in it: there the agent first moves itself into a leaf child (it may move its own
process), then enables the controllers. The probe does not move anything; it reports which of the two
cases applies, and proves that we can create a child cgroup at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from runtime.cgroups.layout import CgroupLayout, Hierarchy

# The file that shows a v1 controller is really there.
_V1_KEY_FILE: dict[str, str] = {
    "memory": "memory.limit_in_bytes",
    "cpu": "cpu.cfs_quota_us",
    "cpuacct": "cpuacct.usage",  # usage is a counter; writing 0 would reset it: read only
    "cpuset": "cpuset.cpus",
    "pids": "pids.max",
    "freezer": "freezer.state",
    "blkio": "blkio.throttle.read_bps_device",  # blkio.weight exists only under CFQ/BFQ
    "devices": "devices.list",
}
# Files we write back to prove write access (the others are only read).
_V1_WRITE_BACK = {"memory", "cpu", "pids", "freezer"}


@dataclass(frozen=True)
class ControllerProbe:
    controller: str
    version: int
    usable: bool
    detail: str


def _probe_name() -> str:
    return f"nodeagent-probe-{os.getpid()}"


def _probe_v1(controller: str, h: Hierarchy) -> ControllerProbe:
    key_file = _V1_KEY_FILE.get(controller, "cgroup.procs")
    child_dir = h.own_dir / _probe_name()
    try:
        child_dir.mkdir()
    except OSError as e:
        return ControllerProbe(controller, 1, False,
                               f"cannot create a cgroup in {h.own_dir}: {e.strerror}")
    try:
        path = child_dir / key_file
        if not path.exists():
            return ControllerProbe(controller, 1, False, f"{key_file} missing in {h.own_dir}")
        if controller in _V1_WRITE_BACK:
            path.write_text(path.read_text())
        else:
            path.read_text()
        return ControllerProbe(controller, 1, True, f"delegated under {h.own_dir}")
    except OSError as e:
        return ControllerProbe(controller, 1, False, f"{key_file} in {h.own_dir}: {e.strerror}")
    finally:
        try:
            child_dir.rmdir()
        except OSError:
            pass  # reported by the caller's leak check below if it matters


def _probe_v2(h: Hierarchy, wanted: tuple[str, ...]) -> list[ControllerProbe]:
    name = _probe_name()
    try:
        (h.own_dir / name).mkdir()
        (h.own_dir / name).rmdir()
    except OSError as e:
        return [ControllerProbe(c, 2, False, f"cannot create a cgroup in {h.own_dir}: {e.strerror}")
                for c in wanted]
    try:
        enabled = set((h.own_dir / "cgroup.subtree_control").read_text().split())
    except OSError:
        enabled = set()
    try:
        has_procs = bool((h.own_dir / "cgroup.procs").read_text().split())
    except OSError:
        has_procs = False
    results = []
    for c in wanted:
        if c not in h.controllers:
            results.append(ControllerProbe(c, 2, False,
                                           f"not in {h.own_dir / 'cgroup.controllers'} "
                                           "(not delegated to us by the parent cgroup)"))
        elif c in enabled:
            results.append(ControllerProbe(c, 2, True, "enabled in our cgroup.subtree_control"))
        elif h.at_root:
            results.append(ControllerProbe(c, 2, True, "we are in the root cgroup: can enable it"))
        elif has_procs:
            results.append(ControllerProbe(c, 2, True, "can enable it after moving our own "
                                           "process into a leaf cgroup (no internal processes)"))
        else:
            results.append(ControllerProbe(c, 2, True, "can enable it in our cgroup.subtree_control"))
    return results


def probe(layout: CgroupLayout) -> dict[str, ControllerProbe]:
    """{controller: ControllerProbe} for every controller we could find, v1 and v2."""
    results: dict[str, ControllerProbe] = {}
    for controller, h in sorted(layout.v1.items()):
        results[controller] = _probe_v1(controller, h)
    if layout.unified is not None:
        for p in _probe_v2(layout.unified, layout.unified.controllers):
            results.setdefault(p.controller, p)
    return results
