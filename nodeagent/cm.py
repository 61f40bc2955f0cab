"""The container manager: the pods' cgroup tree (the kubelet's pkg/kubelet/cm, QoS part).

The kubelet arranges pods in cgroups by QoS class, so that the kernel's fairness and its OOM
killer follow the classes:

    <our cgroup>/kubepods/                     all pods; the node's allocatable is its ceiling
                 kubepods/pod<uid>/            Guaranteed pods, straight below kubepods
                 kubepods/burstable/pod<uid>/  Burstable pods
                 kubepods/besteffort/pod<uid>/ BestEffort pods (cpu.shares 2: they get CPU only
                                               when nobody else wants it)
                 .../pod<uid>/<container>/     each container (made by the runtime, below its pod)

A pod's own cgroup carries the pod-level limits (resources.pod_limits): the sum of its containers'
requests as cpu weight, and a cpu quota and memory ceiling when every container has that limit —
so the containers of a pod cannot together exceed what the pod was given, and a pids limit per pod
keeps a fork bomb in one pod from taking the node.

We never leave our own cgroup (read from /proc/self/cgroup: delegation), on v1 (a directory per
hierarchy) and v2 (one tree) alike; every file is written through runtime.cgroups, the only code
that touches cgroup files. Without cgroups to manage (an unprivileged test run), `enabled=False`
keeps the paths and writes nothing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from nodeagent.resources import pod_limits, qos_class

log = logging.getLogger("nodeagent.cm")

ROOT = "kubepods"
POD_PIDS_LIMIT = 4096     # the kubelet's --pod-max-pids (unlimited upstream by default)
BESTEFFORT_SHARES = 2


class ContainerManager:
    def __init__(self, root: str = ROOT, enabled: bool = True, pids_limit: int = POD_PIDS_LIMIT):
        self.root, self.enabled, self.pids_limit = root, enabled, pids_limit
        self._layout = None

    @property
    def layout(self):
        if self._layout is None:
            from runtime.cgroups.layout import current
            self._layout = current()
        return self._layout

    def qos_path(self, qos: str) -> str:
        return self.root if qos == "Guaranteed" else f"{self.root}/{qos.lower()}"

    def pod_path(self, pod: dict) -> str:
        return f"{self.qos_path(qos_class(pod))}/pod{pod['metadata']['uid']}"

    # --- the tree -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Make kubepods, kubepods/burstable and kubepods/besteffort (idempotent)."""
        if not self.enabled:
            return
        from runtime.spec.model import Cpu, Resources
        self._ensure(self.root, Resources())
        self._ensure(self.qos_path("Burstable"), Resources())
        self._ensure(self.qos_path("BestEffort"), Resources(cpu=Cpu(shares=BESTEFFORT_SHARES)))

    def _ensure(self, path: str, resources) -> None:
        from runtime.cgroups.base import CgroupError, create_cgroup
        if self._exists(path):
            return
        try:
            create_cgroup(self.layout, path, path, resources)
        except CgroupError as e:
            if "already exists" not in str(e):
                raise

    def _dirs(self, path: str) -> list[Path]:
        from runtime.cgroups.layout import CgroupMode
        lay = self.layout
        if lay.mode is CgroupMode.V2:
            return [lay.unified.own_dir / path]
        return list(dict.fromkeys(h.own_dir / path for h in lay.v1.values()))

    def _exists(self, path: str) -> bool:
        dirs = self._dirs(path)
        return bool(dirs) and all(d.is_dir() for d in dirs)

    # --- pods ---------------------------------------------------------------------------------------
    def ensure_pod(self, pod: dict) -> str:
        """The pod's cgroup (made with its limits if missing); the path the sandbox config gets."""
        path = self.pod_path(pod)
        if self.enabled and not self._exists(path):
            from runtime.spec.model import Cpu, Memory, Pids, Resources
            lim = pod_limits(pod)
            self.start()
            self._ensure(path, Resources(
                memory=Memory(limit=lim.memory_limit) if lim.memory_limit else None,
                cpu=Cpu(shares=lim.cpu_shares, quota=lim.cpu_quota,
                        period=100_000 if lim.cpu_quota else None),
                pids=Pids(limit=self.pids_limit) if self.pids_limit > 0 else None))
        return path

    def remove_pod(self, uid: str) -> None:
        """Remove pod<uid> wherever its class put it, with the cgroups of its exited containers
        below it (the kubelet's pod container manager removes the whole subtree too: a runtime
        may keep an exited container's cgroup until the container is removed, and ours does).
        Once no process is left in it: a cgroup still busy raises CgroupError, to be retried."""
        if not self.enabled:
            return
        for qos in ("Guaranteed", "Burstable", "BestEffort"):
            self._destroy(f"{self.qos_path(qos)}/pod{uid}", subtree=True)

    def _destroy(self, path: str, subtree: bool = False) -> None:
        from runtime.cgroups.base import load_cgroup
        dirs = [d for d in self._dirs(path) if d.is_dir()]
        if not dirs:
            return
        if subtree:   # children before their parents: rmdir only takes an empty cgroup
            dirs = [Path(below, name) for d in dirs for below, names, _ in os.walk(d, topdown=False)
                    for name in names] + dirs
        from runtime.cgroups.layout import CgroupMode
        version = 2 if self.layout.mode is CgroupMode.V2 else 1
        state = {"version": version, "dirs": {str(i): str(d) for i, d in enumerate(dirs)}}
        load_cgroup(state).destroy()

    def pod_uids(self) -> set[str]:
        """The pods that have a cgroup here (what `down` and orphan cleanup look at)."""
        out = set()
        if not self.enabled:
            return out
        for qos in ("Guaranteed", "Burstable", "BestEffort"):
            for d in self._dirs(self.qos_path(qos)):
                if d.is_dir():
                    out |= {p.name[3:] for p in d.iterdir() if p.is_dir() and p.name.startswith("pod")}
        return out

    def cleanup(self, uids: set[str]) -> list[str]:
        """Remove the cgroups of the pods `uids` — this node's: other nodes may share our cgroup
        (several `nodeagent up` on one machine, as the tests run them) and their pods are not
        ours to touch — then the QoS tree, unless other pods still live in it (`nodeagent down`,
        after the pods are gone). Cgroups of ours still holding processes are left, and said."""
        from runtime.cgroups.base import CgroupError
        left = []
        if not self.enabled:
            return left
        for uid in uids & self.pod_uids():
            try:
                self.remove_pod(uid)
            except CgroupError as e:
                left.append(str(e))
        for path in (self.qos_path("Burstable"), self.qos_path("BestEffort"), self.root):
            if any(child.is_dir() for d in self._dirs(path) if d.is_dir() for child in d.iterdir()):
                continue          # another node's pods (or its QoS classes) are still below
            try:
                self._destroy(path)
            except CgroupError as e:
                left.append(str(e))
        return left
