"""The cgroup v2 driver: one unified hierarchy, controllers handed down level by level.

In v2 a controller works in a cgroup only if its parent lists it in `cgroup.subtree_control`, and a
parent may only do that while it has *no processes of its own* (the "no internal processes" rule;
the root cgroup is exempt). So to give a container memory/cpu/pids/io limits at
<own>/nodeagent/<id>, we enable the controllers in <own> and in <own>/nodeagent, and put processes
only into leaves. If <own> holds processes (our own shell, say, on a systemd machine) and the
controllers are not already enabled there, the kernel answers EBUSY and we say why: the agent must
run in a cgroup of its own (a systemd service or scope gives it one).

Files we write, from the OCI resources (see runtime/spec/units.py for the unit choices):

    memory.max        memory.limit                 "max" = unlimited
    memory.swap.max   memory.swap - memory.limit   OCI counts swap *including* memory, as v1 did
    memory.low        memory.reservation
    cpu.max           "quota period"               "max 100000" = unlimited
    cpu.weight        from cpu.shares              the 2025 log-quadratic conversion
    pids.max          pids.limit
    io.weight         from blockIO.weight          "default N"

OOM kills are counted in memory.events ("oom_kill N"); `cgroup.kill` (Linux 5.14) SIGKILLs every
process in the cgroup and its children in one write, with no race against forks.

Device access (the allow-list in linux.resources.devices) has no file in v2: it is an eBPF program
attached to the cgroup (devices.py), generated from the same rules v1 writes to devices.allow.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from runtime.cgroups.base import Cgroup, CgroupError, locate, remove_made
from runtime.cgroups.layout import CgroupLayout

CONTROLLERS = ("cpu", "memory", "pids", "io")


class V2Cgroup(Cgroup):
    version = 2

    @property
    def dir(self) -> Path:
        return self.dirs["unified"]

    @classmethod
    def create(cls, layout: CgroupLayout, cgroups_path, default_path, resources, explain=None) -> "V2Cgroup":
        h = layout.unified
        base, rel = locate(h, cgroups_path, default_path)
        cg = cls({"unified": base / rel}, explain)
        wanted = _required_controllers(resources)
        missing = [c for c in wanted if c not in h.controllers]
        if missing:
            raise CgroupError(f"cgroup v2 controller {', '.join(missing)} is not available in "
                              f"{h.own_dir} (not in its cgroup.controllers)")
        # cpuset and hugetlb only when asked (enabling cpuset on the way down costs every sibling).
        usable = [c for c in CONTROLLERS + tuple(c for c in ("cpuset", "hugetlb") if c in wanted)
                  if c in h.controllers]
        made: list[Path] = []
        try:
            parent = base
            cg._enable(parent, usable)
            for part in rel.parts[:-1]:
                parent = parent / part
                if cg._mkdir(parent):
                    made.append(parent)
                cg._enable(parent, usable)
            leaf = parent / rel.parts[-1]
            if not cg._mkdir(leaf):
                raise CgroupError(f"cgroup {leaf} already exists (left over from a container "
                                  "that was not deleted?)", str(leaf))
            made.append(leaf)
            cg._apply(resources)
        except BaseException:
            remove_made(made)
            raise
        return cg

    def _enable(self, d: Path, controllers: list[str]) -> None:
        present = set(self._read(d / "cgroup.subtree_control").split())
        todo = [c for c in controllers if c not in present]
        if todo:
            self._write(d / "cgroup.subtree_control", " ".join("+" + c for c in todo))

    def _apply(self, r) -> None:
        d = self.dir
        _refuse_v1_only(r)
        if r.memory is not None:
            m = r.memory
            if m.limit is not None:
                self._write(d / "memory.max", "max" if m.limit < 0 else str(m.limit))
            if m.swap is not None:
                swap = "max" if m.swap < 0 or m.limit is None or m.limit < 0 else str(max(0, m.swap - m.limit))
                if (d / "memory.swap.max").exists() or swap != "0":
                    self._write(d / "memory.swap.max", swap)
            if m.reservation is not None:
                self._write(d / "memory.low", str(m.reservation))
        if r.cpu is not None:
            c = r.cpu
            if c.quota is not None or c.period is not None:
                period = c.period or 100_000
                quota = "max" if c.quota is None or c.quota < 0 else str(c.quota)
                self._write(d / "cpu.max", f"{quota} {period}")
            if c.shares is not None:
                from runtime.spec.units import shares_to_weight
                self._write(d / "cpu.weight", str(shares_to_weight(c.shares)))
        if r.cpu is not None and r.cpu.cpus:
            self._write(d / "cpuset.cpus", r.cpu.cpus)
        if r.cpu is not None and r.cpu.mems:
            self._write(d / "cpuset.mems", r.cpu.mems)
        for i, h in enumerate(r.hugepage_limits):
            path = d / f"hugetlb.{h.page_size}.max"
            if not path.exists():
                raise CgroupError(f"linux.resources.hugepageLimits[{i}].pageSize: {path.name} does "
                                  f"not exist (no {h.page_size} huge pages on this host)", str(path))
            self._write(path, str(h.limit))
        if r.pids is not None:
            self._write(d / "pids.max", "max" if r.pids.limit <= 0 else str(r.pids.limit))
        if r.block_io is not None and r.block_io.weight is not None:
            from runtime.spec.units import blkio_to_io_weight
            self._write(d / "io.weight", f"default {blkio_to_io_weight(r.block_io.weight)}")
        if r.devices:
            from runtime.cgroups.base import CgroupError
            from runtime.cgroups.devices import attach_device_filter
            from runtime.sys import real
            try:
                attach_device_filter(real(), d, r.devices, self.explain)
            except OSError as e:
                raise CgroupError(f"attaching the device filter to {d}: {e}", str(d), None, e.errno) from e

    def oom_kills(self) -> int:
        try:
            for line in self._read(self.dir / "memory.events").splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except FileNotFoundError:
            pass
        return 0

    def kill_all(self) -> None:
        try:
            self._write(self.dir / "cgroup.kill", "1")
        except CgroupError as e:
            if e.errno != errno.ENOENT:
                raise
            self.kill_until_empty()  # kernels before 5.14: no cgroup.kill

    def container_mounts(self) -> list[tuple[str, str, str]]:
        return [("cgroup2", "", "")]


def _refuse_v1_only(r) -> None:
    """Settings cgroup v2 has no file for: refused by name rather than dropped."""
    m, c, n = r.memory, r.cpu, r.network
    for field, value in (("memory.swappiness", m and m.swappiness),
                         ("memory.disableOOMKiller", m and m.disable_oom_killer),
                         ("memory.kernel", m and m.kernel), ("memory.kernelTCP", m and m.kernel_tcp),
                         ("cpu.realtimeRuntime", c and c.realtime_runtime),
                         ("cpu.realtimePeriod", c and c.realtime_period),
                         ("network.classID", n and n.class_id),
                         ("network.priorities", n and n.priorities)):
        if value is not None and value is not False and value != ():
            raise CgroupError(f"linux.resources.{field}: cgroup v2 has no such setting, so it "
                              "cannot be applied on this host")


def _required_controllers(r) -> list[str]:
    need = []
    if r.cpu is not None and (r.cpu.cpus or r.cpu.mems):
        need.append("cpuset")
    if r.hugepage_limits:
        need.append("hugetlb")
    if r.memory is not None:
        need.append("memory")
    if r.cpu is not None:
        need.append("cpu")
    if r.pids is not None:
        need.append("pids")
    if r.block_io is not None and r.block_io.weight is not None:
        need.append("io")
    return need
