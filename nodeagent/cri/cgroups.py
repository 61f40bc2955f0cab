"""The pod-level cgroup path, as the runtime side sees it.

A container's cgroup is `<cgroup_parent>/<container id>`, where `cgroup_parent` is the sandbox's
(PodSandboxConfig.cgroup_parent), a path *relative to the agent's own cgroup* in every hierarchy
(what /proc/self/cgroup says for the agent; on this project's hosts that is e.g.
/process_api/<id>, on a systemd machine /system.slice/nodeagent.service). The runtime creates
every missing directory of that path when it creates the first container (runtime/cgroups), and
removes only the container's own directory; the pod-level directories belong to whoever named
them: the kubelet side's container manager — or, when the sandbox was given no cgroup_parent,
this runtime side, which then uses `nodeagent-pods/<sandbox id>` and removes it with the sandbox.

Only directories are made and removed here; the files inside are runtime/cgroups' business.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path, PurePosixPath

from nodeagent.cri.api import CreateContainerError

DEFAULT_PARENT = "nodeagent-pods"


def check_parent(path: str) -> str:
    """A cgroup_parent as the runtime will take it: relative, no '..', no systemd slice form.

    The agent's rule, not the runtime's: pods live below the agent's own cgroup. The runtime
    honours an absolute cgroupsPath anywhere in the hierarchy (the OCI spec's meaning, as runc),
    so an absolute cgroup_parent is accepted here only inside our own cgroup in every hierarchy."""
    p = PurePosixPath(path)
    if ":" in path or ".." in p.parts:
        raise CreateContainerError(f"cgroup_parent {path!r}: give a path relative to the agent's "
                                   "own cgroup, without '..' (the systemd slice:prefix:name form "
                                   "is not supported)")
    if not p.is_absolute():
        return str(p)
    from runtime.cgroups.base import relative_path
    from runtime.cgroups.layout import current

    layout = current()
    for h in list(layout.v1.values()) + ([layout.unified] if layout.unified else []):
        try:
            relative_path(h.own_path, path, path)
        except Exception:  # noqa: BLE001 - a CgroupError: outside our own cgroup here
            raise CreateContainerError(f"cgroup_parent {path!r} is outside the agent's own "
                                       f"cgroup ({h.own_path} in {h.mountpoint})") from None
    return str(p)


def dirs(rel: str) -> list[str]:
    """The directory of `rel` below our own cgroup, in every mounted hierarchy we use."""
    from runtime.cgroups.base import relative_path
    from runtime.cgroups.layout import current

    layout = current()
    hierarchies = list({h.mountpoint: h for h in layout.v1.values()}.values())
    if layout.unified is not None:
        hierarchies.append(layout.unified)
    out = []
    for h in hierarchies:
        try:
            out.append(str(h.own_dir / relative_path(h.own_path, rel, rel)))
        except Exception:  # noqa: BLE001 - outside our subtree: nothing of ours to remove
            continue
    return out


def remove_tree(rel: str, timeout: float = 5.0) -> None:
    """rmdir `rel` (relative to our own cgroup) and anything below it, deepest first, in every
    hierarchy. Each must be empty of processes; a directory whose last process is still being
    reaped is busy for a moment, so EBUSY is retried briefly."""
    deadline = time.monotonic() + timeout
    for top in dirs(rel):
        if not os.path.isdir(top):
            continue
        for directory, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
            while True:
                try:
                    os.rmdir(directory)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)


def usage(cg) -> dict:
    """CPU and memory use of a container's cgroup (a runtime.cgroups Cgroup), in CRI's terms:
    cpu_usage_core_nano_seconds (cumulative), memory_usage_bytes, memory_working_set_bytes
    (usage minus inactive file pages, what the kubelet evicts on) and memory_rss_bytes
    (anonymous memory), process_count (pids.current: the tasks in it, which the kubelet ranks
    pods by under PID pressure). A key is absent when the host does not account it."""
    out: dict = {}
    dirs = {k: Path(v) for k, v in cg.dirs.items()}

    def read(path: Path) -> str | None:
        try:
            return path.read_text()
        except OSError:
            return None

    if cg.version == 2:
        d = dirs["unified"]
        stat = dict(line.split() for line in (read(d / "cpu.stat") or "").splitlines() if line)
        if "usage_usec" in stat:
            out["cpu_usage_core_nano_seconds"] = int(stat["usage_usec"]) * 1000
        current = read(d / "memory.current")
        mem = dict(line.split() for line in (read(d / "memory.stat") or "").splitlines() if line)
        inactive = int(mem.get("inactive_file", 0))
        rss = mem.get("anon")
        pids = read(d / "pids.current")
    else:
        acct = dirs.get("cpuacct") or dirs.get("cpu,cpuacct") or next(
            (v for k, v in dirs.items() if "cpuacct" in k), None)
        raw = read(acct / "cpuacct.usage") if acct else None
        if raw:
            out["cpu_usage_core_nano_seconds"] = int(raw)
        md = dirs.get("memory")
        current = read(md / "memory.usage_in_bytes") if md else None
        mem = dict(line.split() for line in (read(md / "memory.stat") or "").splitlines()
                   if line) if md else {}
        inactive = int(mem.get("total_inactive_file", 0))
        rss = mem.get("total_rss")
        pd = dirs.get("pids")
        pids = read(pd / "pids.current") if pd else None
    if rss is not None:
        out["memory_rss_bytes"] = int(rss)
    if pids:
        out["process_count"] = int(pids)
    if current:
        used = int(current)
        out["memory_usage_bytes"] = used
        out["memory_working_set_bytes"] = max(0, used - inactive)
    return out
