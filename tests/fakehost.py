"""A fake host tree for unit tests: /proc, /sys, /boot and /lib/modules under a temporary directory.

Code under test takes a `HostPaths`; `FakeHost.paths` points it here. The helpers write the files the
way the kernel formats them, so parsers meet realistic input (mountinfo's " - " separator, cgroup
lines "ID:CONTROLLERS:PATH", config.gz).
"""

from __future__ import annotations

import gzip
from pathlib import Path

from runtime.kernel import HostPaths

V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")


class FakeHost:
    def __init__(self, root: Path, release: str = "6.1.0-test"):
        self.root = root
        self.paths = HostPaths.under(root)
        self.release = release
        self.write("proc/sys/kernel/osrelease", release + "\n")
        self.mountinfo: list[str] = []
        self._mount_id = 20

    def write(self, rel: str, text: str) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        return p

    # --- kernel ----------------------------------------------------------------------------------
    def namespaces(self, *names: str, disabled: tuple[str, ...] = ()) -> None:
        for n in names:
            self.write(f"proc/self/ns/{n}", "")
            self.write(f"proc/sys/user/max_{n}_namespaces", "0\n" if n in disabled else "1000\n")

    def filesystems(self, *names: str) -> None:
        self.write("proc/filesystems", "".join(f"nodev\t{n}\n" for n in names))

    def config(self, where: str = "proc", **symbols: str) -> None:
        text = "".join(f"CONFIG_{k}={v}\n" for k, v in symbols.items())
        if where == "proc":
            p = self.root / "proc/config.gz"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(gzip.compress(text.encode()))
        else:
            self.write(f"boot/config-{self.release}", text)

    def modules(self, listing: str, *paths: str) -> None:
        self.write(f"lib/modules/{self.release}/{listing}", "".join(f"{p}:\n" for p in paths))

    def sysctl(self, name: str, value: str) -> None:
        self.write("proc/sys/" + name.replace(".", "/"), value + "\n")

    # --- cgroups ---------------------------------------------------------------------------------
    def _mount(self, mountpoint: str, fstype: str, opts: str, root: str = "/") -> None:
        self._mount_id += 1
        self.mountinfo.append(f"{self._mount_id} 1 0:{self._mount_id} {root} {mountpoint} "
                              f"rw,nosuid,nodev,noexec,relatime shared:{self._mount_id} - "
                              f"{fstype} {fstype} {opts}")
        self.write("proc/self/mountinfo", "\n".join(self.mountinfo) + "\n")

    def cgroup_v2(self, own: str = "/", controllers: str = "cpuset cpu io memory hugetlb pids",
                  mountpoint: str = "/sys/fs/cgroup", subtree: str = "", procs: str = "") -> Path:
        self._mount(mountpoint, "cgroup2", "rw,nsdelegate,memory_recursiveprot")
        base = self.root / mountpoint.lstrip("/") / own.lstrip("/")
        self.write(str((base / "cgroup.controllers").relative_to(self.root)), controllers + "\n")
        self.write(str((base / "cgroup.subtree_control").relative_to(self.root)), subtree + "\n")
        self.write(str((base / "cgroup.procs").relative_to(self.root)), procs)
        self._cgroup_lines = getattr(self, "_cgroup_lines", []) + [f"0::{own}"]
        self.write("proc/self/cgroup", "\n".join(self._cgroup_lines) + "\n")
        return base

    def cgroup_v1(self, own: dict[str, str] | None = None,
                  controllers: tuple[str, ...] = V1_CONTROLLERS) -> None:
        own = own or {}
        lines = getattr(self, "_cgroup_lines", [])
        for i, c in enumerate(controllers, start=1):
            self._mount(f"/sys/fs/cgroup/{c}", "cgroup", f"rw,{c}")
            path = own.get(c, "/")
            (self.root / "sys/fs/cgroup" / c / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
            lines.append(f"{i}:{c}:{path}")
        self._mount("/sys/fs/cgroup/systemd", "cgroup", "rw,xattr,name=systemd")
        lines.append(f"{len(controllers) + 1}:name=systemd:/")
        self._cgroup_lines = lines
        self.write("proc/self/cgroup", "\n".join(lines) + "\n")
