"""What eviction measures: the node's signals, and what each pod uses (the kubelet's Summary API,
as the eviction manager reads it: makeSignalObservations and its statsFunc).

Node signals, each an (available, capacity) pair:

    memory.available     psutil's MemAvailable and MemTotal (the kubelet: capacity minus the
                         root cgroup's working set; both count reclaimable page cache as free)
    nodefs.*             statvfs of the data dir: free blocks for an unprivileged user
                         (f_bavail) and free inodes (f_ffree), against f_blocks / f_files
    imagefs.*            statvfs of the image store (here on the same filesystem, unless the
                         store was put elsewhere)
    pid.available        min(kernel.pid_max, kernel.threads-max) less the tasks now on the system
                         (the 4th field of /proc/loadavg counts every thread), as the kubelet's
                         pidlimit package reads them

A filesystem that has no inode count (btrfs reports 0) gives no inode signal: its thresholds are
never met, as the kubelet logs "no observation found" and moves on.

Per pod, what ranking and the Evicted message need: each running container's working set and
process count (its cgroup, read by the runtime: nodeagent/cri/cgroups.py), and — only when a disk
signal is the one being reclaimed, since walking directories is not free — the bytes and inodes of
its writable layer, its logs and its emptyDir volumes.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from nodeagent.cri.api import CRIError
from nodeagent.resources import format_quantity


@dataclass(frozen=True)
class Observation:
    available: int
    capacity: int
    binary: bool = True        # bytes print as Ki/Mi; counts (inodes, pids) in decimal

    def text(self) -> str:
        return format_quantity(self.available, self.binary)


def _fs(path: str, prefix: str) -> dict[str, Observation]:
    st = os.statvfs(path)
    out = {f"{prefix}.available": Observation(st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize)}
    if st.f_files:
        out[f"{prefix}.inodesFree"] = Observation(st.f_ffree, st.f_files, binary=False)
    return out


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def pid_observation() -> Observation | None:
    limits = [n for n in (_read_int("/proc/sys/kernel/pid_max"),
                          _read_int("/proc/sys/kernel/threads-max")) if n is not None]
    try:
        tasks = int(Path("/proc/loadavg").read_text().split()[3].split("/")[1])
    except (OSError, ValueError, IndexError):
        return None
    if not limits:
        return None
    return Observation(min(limits) - tasks, min(limits), binary=False)


def observe_node(data_dir: str, image_dir: str | None = None) -> dict[str, Observation]:
    """Every node signal we can measure (blocking: statvfs, /proc)."""
    import psutil
    mem = psutil.virtual_memory()
    out = {"memory.available": Observation(mem.available, mem.total)}
    out |= _fs(data_dir, "nodefs")
    image_dir = image_dir if image_dir and os.path.isdir(image_dir) else data_dir
    out |= _fs(image_dir, "imagefs")
    pids = pid_observation()
    if pids is not None:
        out["pid.available"] = pids
    return out


# --- per pod ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ContainerUsage:
    name: str
    memory: int | None = None        # working set, bytes
    rootfs: int | None = None        # the writable layer, bytes
    logs: int | None = None          # its log files, bytes


@dataclass(frozen=True)
class PodUsage:
    containers: tuple[ContainerUsage, ...] = ()
    processes: int | None = None
    disk: int | None = None          # writable layers + logs + emptyDir volumes, bytes
    inodes: int | None = None
    volumes: tuple[tuple[str, int], ...] = ()     # (emptyDir volume, bytes)

    @property
    def memory(self) -> int | None:
        known = [c.memory for c in self.containers if c.memory is not None]
        return sum(known) if known else None


def du(path: str) -> tuple[int, int]:
    """(bytes, inodes) under path, not crossing into other filesystems (blocking)."""
    try:
        top = os.lstat(path)
    except OSError:
        return 0, 0
    size, inodes, stack = 0, 0, [path]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                for e in it:
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    size += st.st_blocks * 512
                    inodes += 1
                    if e.is_dir(follow_symlinks=False) and st.st_dev == top.st_dev:
                        stack.append(e.path)
        except OSError:
            continue
    return size, inodes


class PodStatsSource:
    """Builds PodUsage for the eviction manager from the runtime and the node's directories.
    `status_of(uid)` is the status manager's newest status of a pod (its container IDs)."""

    def __init__(self, runtime, status_of: Callable[[str], dict | None], log_root: str,
                 pods_dir: str, storage_dir: str):
        self.runtime, self.status_of = runtime, status_of
        self.log_root, self.pods_dir, self.storage_dir = log_root, pods_dir, storage_dir

    async def __call__(self, pods: list[dict], disk: bool) -> dict[str, PodUsage]:
        out = {}
        for pod in pods:
            md = pod["metadata"]
            status = self.status_of(md["uid"]) or pod.get("status") or {}
            running = [(cs["name"], cs["containerID"].partition("://")[2] or cs["containerID"])
                       for cs in status.get("containerStatuses") or []
                       if cs.get("containerID") and "running" in (cs.get("state") or {})]
            if not running:
                continue          # nothing runs: no stats, as the Summary API has none
            containers, processes = [], 0
            for name, cid in running:
                try:
                    s = await self.runtime.container_stats(cid)
                except (CRIError, NotImplementedError):
                    s = {}
                processes += int(s.get("process_count") or 0)
                containers.append(ContainerUsage(name, s.get("memory_working_set_bytes")))
            usage = PodUsage(tuple(containers), processes)
            if disk:
                usage = await asyncio.to_thread(self._disk, pod, usage, dict(running))
            out[md["uid"]] = usage
        return out

    def _disk(self, pod: dict, usage: PodUsage, ids: dict[str, str]) -> PodUsage:
        md = pod["metadata"]
        logs = os.path.join(self.log_root, f"{md.get('namespace', 'default')}_{md['name']}_{md['uid']}")
        total, inodes, containers = 0, 0, []
        for c in usage.containers:
            rootfs = du(os.path.join(self.storage_dir, ids[c.name], "upper"))
            log = du(os.path.join(logs, c.name))
            total, inodes = total + rootfs[0] + log[0], inodes + rootfs[1] + log[1]
            containers.append(ContainerUsage(c.name, c.memory, rootfs[0], log[0]))
        empty_dirs = os.path.join(self.pods_dir, md["uid"], "volumes", "kubernetes.io~empty-dir")
        volumes = []
        for v in (pod.get("spec") or {}).get("volumes") or []:
            if "emptyDir" in v:
                # its own walk: a medium Memory volume is a tmpfs, another filesystem — measured
                # for its sizeLimit, but not node disk (IsLocalEphemeralVolume says the same)
                b, i = du(os.path.join(empty_dirs, v.get("name", "")))
                if (v.get("emptyDir") or {}).get("medium") != "Memory":
                    total, inodes = total + b, inodes + i
                volumes.append((v.get("name", ""), b))
        return PodUsage(tuple(containers), usage.processes, total, inodes, tuple(volumes))
