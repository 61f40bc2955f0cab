"""runtime.cgroups — the only code that reads or writes cgroup files.

A cgroup is a directory in a cgroup filesystem; its files are the controllers' knobs (memory.max,
cpu.cfs_quota_us, pids.max, ...). Linux has two versions, and a machine can mix them:

    v2 ("unified")  one hierarchy at /sys/fs/cgroup; each cgroup lists its usable controllers in
                    cgroup.controllers and hands them to its children through cgroup.subtree_control.
                    Rule: a non-root cgroup with processes cannot hand controllers down ("no internal
                    processes"), so processes live in leaves only.
    v1              one hierarchy per controller (or per group of co-mounted controllers), e.g.
                    /sys/fs/cgroup/memory; a process is in one cgroup *per hierarchy*.
    hybrid          v1 hierarchies for the controllers, plus a cgroup2 mount (often
                    /sys/fs/cgroup/unified) that holds no or few controllers. These course machines are
                    hybrid; so are older systemd distributions.

We only ever create cgroups *below our own* cgroup (read from /proc/self/cgroup), in every hierarchy:
that is what delegation means, and it keeps us from touching anybody else's processes.

    layout.py   find the mode, the hierarchies and our own cgroup in each (/proc/self/mountinfo,
                /proc/self/cgroup)
    probe.py    prove, by creating and removing a child cgroup, which controllers we can use
    base.py     Cgroup: what the runtime asks of a container's cgroup, and the writes they share
    v1.py v2.py its two drivers (each builds on base.py only, never on the other)
    devices.py  the device rules, as v1 devices.allow lines or a v2 BPF program

This module is the package's face: `create_cgroup` and `load_cgroup` pick the driver.

Every knob is a plain write of a decimal string to a file (base.Cgroup._write, which names the file
and value in its error and echoes the write for --explain), in v1 and v2 alike. Not through
cgroupspy: it models v1 only, so v2 (the primary target) would write its files directly anyway;
its typed attributes are int(value) written to a file, which _write already is; and its
Controllers need a tree of its Nodes, which we had to fake for our own cgroup (its Tree walks, and
may create, whole hierarchies). It bought two ways of writing one kind of file.

May import: runtime.sys, runtime.spec, runtime.errors, runtime.kernel, the standard library.
"""

from __future__ import annotations

from pathlib import Path

from runtime.cgroups.base import Cgroup, CgroupError, Explain
from runtime.cgroups.layout import CgroupLayout, CgroupMode

__all__ = ["Cgroup", "CgroupError", "create_cgroup", "load_cgroup"]


def create_cgroup(layout: CgroupLayout, cgroups_path: str | None, default_path: str, resources,
                  explain: Explain | None = None) -> Cgroup:
    """Make the container's cgroup with `resources` (a runtime.spec.model.Resources) written."""
    if layout.mode is CgroupMode.V2:
        from runtime.cgroups.v2 import V2Cgroup
        return V2Cgroup.create(layout, cgroups_path, default_path, resources, explain)
    if layout.mode in (CgroupMode.V1, CgroupMode.HYBRID):
        from runtime.cgroups.v1 import V1Cgroup
        return V1Cgroup.create(layout, cgroups_path, default_path, resources, explain)
    raise CgroupError("no cgroup filesystem is mounted (see `nodeagent doctor`)")


def load_cgroup(state: dict, explain: Explain | None = None) -> Cgroup:
    """The Cgroup a state file describes (see Cgroup.to_state)."""
    dirs = {k: Path(v) for k, v in state["dirs"].items()}
    if state["version"] == 2:
        from runtime.cgroups.v2 import V2Cgroup
        return V2Cgroup(dirs, explain)
    from runtime.cgroups.v1 import V1Cgroup
    return V1Cgroup(dirs, explain, state.get("mounts"))

