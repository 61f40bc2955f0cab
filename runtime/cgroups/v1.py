"""The cgroup v1 driver, for v1 and hybrid hosts (like the course machines).

In v1 every controller (or group of co-mounted controllers) is its own tree, so a container's
"cgroup" is one directory per hierarchy — <memory>/…/nodeagent/<id>, <pids>/nodeagent/<id>, ... —
each below *our own* cgroup in that hierarchy (on these machines our memory cgroup is
/process_api/<session>, the others are "/"). The process joins every one of them.

Files we write, from the OCI resources:

    memory.limit_in_bytes          memory.limit
    memory.memsw.limit_in_bytes    memory.swap (memory + swap, the v1 meaning OCI kept)
    memory.soft_limit_in_bytes     memory.reservation
    cpu.cfs_period_us, cpu.cfs_quota_us    the CFS bandwidth limit (-1 = none)
    cpu.shares                     cpu.shares
    pids.max                       pids.limit
    devices.deny / devices.allow   the device allow-list ("a" denies everything first)
    blkio.weight                   blockIO.weight (only with the CFQ/BFQ I/O schedulers)

OOM kills are counted in memory.oom_control ("oom_kill N", Linux 4.13+). To kill everything at once,
v1 has no cgroup.kill: we freeze the freezer cgroup (so nothing can fork while we look), SIGKILL
every pid in it, and thaw it so the kills are delivered.

Joining, and why the process joins by itself. Moving a process between cgroups normally takes a
global lock (cgroup_threadgroup_rwsem) for writing, so that no thread of it can fork or exit
half-way through. Taking that lock waits for an RCU grace period — 5 to 20 ms on these machines,
longer than everything else in a container start (runc pays it: its first cgroup.procs write takes
~11 ms here). The kernel skips the lock in one case: a thread moving *itself*, by writing "0" to a
v1 `tasks` file (cgroup_procs_write_start: "If the thread is `current`, it won't exit(2) under our
hands ... Therefore, we can skip the global lock"). A container's init is single-threaded, so
moving its one thread is moving the process: it writes "0" to `tasks` in each hierarchy, ~0.3 ms
for all of them. (v2 has no such door for a whole process: cgroup.threads only moves threads
within one threaded subtree.)

On a hybrid host we therefore leave the v2 tree alone: joining a cgroup there would cost the grace
period again, and it has no controllers (here only hugetlb) — the v1 hierarchies enforce every
limit, and the freezer does what cgroup.kill would. State files written by older versions may
still list a "unified" directory; kill_all and destroy handle it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from runtime.cgroups.base import Cgroup, CgroupError, locate, remove_made
from runtime.cgroups.layout import CgroupLayout, Hierarchy

# Controllers a container joins. cpuset only when the spec asks for cpus or mems: a new cpuset
# cgroup starts with no CPUs and no memory nodes and must be filled in from its parent first
# (each missing ancestor too), which a container that does not care need not pay for. hugetlb,
# net_cls and net_prio likewise only when asked.
JOIN = ("memory", "cpu", "cpuacct", "pids", "freezer", "devices", "blkio")


def _wanted(resources) -> tuple[str, ...]:
    """The optional controllers `resources` needs (see JOIN)."""
    extra = []
    if resources.cpu is not None and (resources.cpu.cpus or resources.cpu.mems):
        extra.append("cpuset")
    if resources.hugepage_limits:
        extra.append("hugetlb")
    if resources.network is not None and resources.network.class_id is not None:
        extra.append("net_cls")
    if resources.network is not None and resources.network.priorities:
        extra.append("net_prio")
    return tuple(extra)


# The spec's field for each optional controller, for the error when the host lacks it.
_FIELD = {"cpuset": "cpu.cpus/cpu.mems", "hugetlb": "hugepageLimits", "net_cls": "network.classID",
          "net_prio": "network.priorities"}


class V1Cgroup(Cgroup):
    version = 1

    def __init__(self, dirs: dict[str, Path], explain=None, mounts: list | None = None):
        super().__init__(dirs, explain)
        # (subdir under /sys/fs/cgroup, fstype, mount data) for the container's view; see create().
        self._mounts = mounts or []

    @classmethod
    def create(cls, layout: CgroupLayout, cgroups_path, default_path, resources, explain=None) -> "V1Cgroup":
        hierarchies: dict[str, Hierarchy] = {}
        for controller in JOIN + _wanted(resources):
            h = layout.v1.get(controller)
            if h is not None:
                hierarchies.setdefault(h.mountpoint.name, h)
        for controller in _wanted(resources):
            if controller not in layout.v1:
                raise CgroupError(f"linux.resources.{_FIELD[controller]}: the {controller} cgroup "
                                  "controller is not available on this host (no v1 hierarchy for "
                                  "it; see `nodeagent doctor`)")
        for controller, needed in (("memory", resources.memory), ("cpu", resources.cpu),
                                   ("pids", resources.pids)):
            if needed is not None and controller not in layout.v1:
                raise CgroupError(f"cgroup controller {controller} is not available on this host "
                                  "(no v1 hierarchy for it; see `nodeagent doctor`)")
        dirs: dict[str, Path] = {}
        mounts = []
        for name, h in hierarchies.items():
            base, rel = locate(h, cgroups_path, default_path)
            dirs[name] = base / rel
            mounts.append((name, "cgroup", ",".join(h.controllers)))
        cg = cls(dirs, explain, mounts)
        made: list[Path] = []
        try:
            for name, d in dirs.items():
                parents = cg._mkdir_parents(d)
                made += parents
                if not cg._mkdir(d):
                    raise CgroupError(f"cgroup {d} already exists (left over from a container "
                                      "that was not deleted?)", str(d))
                made.append(d)
                if "cpuset" in hierarchies[name].controllers:
                    for new in parents + [d]:   # empty until filled in from the parent
                        cg._inherit_cpuset(new)
            cg._apply(resources)
        except BaseException:
            remove_made(made)
            raise
        return cg

    def to_state(self) -> dict:
        return super().to_state() | {"mounts": self._mounts}

    @property
    def self_join_is_cheap(self) -> bool:
        return "unified" not in self.dirs  # an older state's v2 directory needs cgroup.procs

    def join_self(self) -> None:
        """Move the calling thread — the caller must be single-threaded, so: the process — into
        every hierarchy, through `tasks`, which spares the grace period (see the module docstring)."""
        for name, d in self.dirs.items():
            self._write(d / ("cgroup.procs" if name == "unified" else "tasks"), "0")

    def _inherit_cpuset(self, d: Path) -> None:
        for name in ("cpuset.cpus", "cpuset.mems"):
            self._write(d / name, self._read(d.parent / name).strip())

    # --- limits --------------------------------------------------------------------------------------
    def _apply(self, r) -> None:
        if r.memory is not None and "memory" in self.dirs:
            m = r.memory
            if m.limit is not None:
                self._write(self.dirs["memory"] / "memory.limit_in_bytes", str(m.limit))
            if m.swap is not None and (self.dirs["memory"] / "memory.memsw.limit_in_bytes").exists():
                self._write(self.dirs["memory"] / "memory.memsw.limit_in_bytes", str(m.swap))
            if m.reservation is not None:
                self._write(self.dirs["memory"] / "memory.soft_limit_in_bytes", str(m.reservation))
            if m.swappiness is not None:
                self._write(self._file("memory", "memory.swappiness", "memory.swappiness"),
                            str(m.swappiness))
            if m.disable_oom_killer:
                self._write(self._file("memory", "memory.oom_control", "memory.disableOOMKiller"), "1")
            if m.kernel is not None:
                path = self._file("memory", "memory.kmem.limit_in_bytes", "memory.kernel")
                self._write(path, str(m.kernel))
                # Linux 5.16+ keeps the file but ignores what is written to it (deprecated):
                # a limit that is not in force is refused, not reported as set.
                if int(self._read(path)) != m.kernel:
                    raise CgroupError("linux.resources.memory.kernel: this kernel ignores kernel "
                                      "memory limits (memory.kmem.limit_in_bytes, deprecated since "
                                      "Linux 5.16)", str(path))
            if m.kernel_tcp is not None:
                self._write(self._file("memory", "memory.kmem.tcp.limit_in_bytes", "memory.kernelTCP"),
                            str(m.kernel_tcp))
        if r.cpu is not None and "cpu" in self.dirs:
            c = r.cpu
            if c.period is not None:
                self._write(self.dirs["cpu"] / "cpu.cfs_period_us", str(c.period))
            if c.quota is not None:
                self._write(self.dirs["cpu"] / "cpu.cfs_quota_us", str(c.quota))
            if c.shares is not None:
                self._write(self.dirs["cpu"] / "cpu.shares", str(c.shares))
            if c.realtime_period is not None:
                self._write(self._file("cpu", "cpu.rt_period_us", "cpu.realtimePeriod"),
                            str(c.realtime_period))
            if c.realtime_runtime is not None:
                self._write(self._file("cpu", "cpu.rt_runtime_us", "cpu.realtimeRuntime"),
                            str(c.realtime_runtime))
        if r.cpu is not None and "cpuset" in self.dirs:
            if r.cpu.cpus:
                self._write(self.dirs["cpuset"] / "cpuset.cpus", r.cpu.cpus)
            if r.cpu.mems:
                self._write(self.dirs["cpuset"] / "cpuset.mems", r.cpu.mems)
        for i, h in enumerate(r.hugepage_limits):
            self._write(self._file("hugetlb", f"hugetlb.{h.page_size}.limit_in_bytes",
                                   f"hugepageLimits[{i}].pageSize"), str(h.limit))
        if r.network is not None and r.network.class_id is not None:
            self._write(self._file("net_cls", "net_cls.classid", "network.classID"),
                        str(r.network.class_id))
        if r.network is not None:
            for name, priority in r.network.priorities:
                self._write(self._file("net_prio", "net_prio.ifpriomap", "network.priorities"),
                            f"{name} {priority}")
        if r.pids is not None:
            self._write(self.dirs["pids"] / "pids.max", "max" if r.pids.limit <= 0 else str(r.pids.limit))
        if r.devices and "devices" in self.dirs:
            d = self.dirs["devices"]
            for rule in r.devices:
                entry = (f"{rule.type} {'*' if rule.major is None else rule.major}:"
                         f"{'*' if rule.minor is None else rule.minor} {rule.access}")
                if rule.type == "a":
                    entry = "a"
                self._write(d / ("devices.allow" if rule.allow else "devices.deny"), entry)
        if r.block_io is not None and r.block_io.weight is not None:
            path = self.dirs.get("blkio", Path("/nonexistent")) / "blkio.weight"
            if not path.exists():
                raise CgroupError("blockIO.weight: blkio.weight is not available on this host "
                                  "(it needs the CFQ or BFQ I/O scheduler)", str(path))
            self._write(path, str(r.block_io.weight))

    def _file(self, controller: str, filename: str, field: str) -> Path:
        """The cgroup file for an OCI field, or a CgroupError naming the field if this host does
        not have it (a setting is applied or refused, never dropped)."""
        for name, d in self.dirs.items():
            if (d / filename).exists():
                return d / filename
        raise CgroupError(f"linux.resources.{field}: {filename} does not exist on this host "
                          f"({controller} cgroup v1), so the setting cannot be applied",
                          filename)

    # --- events and teardown --------------------------------------------------------------------------
    def oom_kills(self) -> int:
        d = self.dirs.get("memory")
        if d is None:
            return 0
        try:
            for line in self._read(d / "memory.oom_control").splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except FileNotFoundError:
            pass
        return 0

    def kill_all(self) -> None:
        if "unified" in self.dirs and (self.dirs["unified"] / "cgroup.kill").exists():
            self._write(self.dirs["unified"] / "cgroup.kill", "1")
            return
        freezer = self.dirs.get("freezer")
        if freezer is None:
            self.kill_until_empty()
            return
        self._write(freezer / "freezer.state", "FROZEN")
        deadline = time.monotonic() + 5
        while self._read(freezer / "freezer.state").strip() != "FROZEN":
            if time.monotonic() > deadline:
                raise CgroupError(f"{freezer} did not freeze within 5 s", str(freezer))
            time.sleep(0.002)
        try:
            for pid in self.procs():
                try:
                    os.kill(pid, signal.SIGKILL)  # queued now, delivered when thawed
                except ProcessLookupError:
                    pass
        finally:
            self._write(freezer / "freezer.state", "THAWED")

    def container_mounts(self) -> list[tuple[str, str, str]]:
        return [(fstype, name, data) for name, fstype, data in self._mounts]

