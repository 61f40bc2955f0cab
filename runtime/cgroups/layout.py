"""Where the cgroup hierarchies are mounted, which mode the host is in, and where *our* cgroup is.

Two files tell it all:

/proc/self/mountinfo has one line per mount. For cgroup mounts the filesystem type is `cgroup` (v1)
or `cgroup2`, and the super options of a v1 mount name its controllers ("rw,memory" or
"rw,cpu,cpuacct"). Field 4 is the mount's root *inside* the hierarchy: usually "/", but not in a
container that was given a sub-tree.

/proc/self/cgroup has one line per hierarchy: "ID:CONTROLLERS:PATH". v1 lines list their controllers;
the v2 line is "0::PATH". PATH is relative to our cgroup namespace's root.

So our own cgroup directory in a hierarchy is: mount point + (PATH relative to the mount's root).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from runtime.kernel import HostPaths


class CgroupMode(enum.Enum):
    V1 = "v1"
    HYBRID = "hybrid"
    V2 = "v2"
    NONE = "none"


@dataclass(frozen=True)
class Hierarchy:
    """One mounted cgroup hierarchy and our place in it."""

    version: int                      # 1 or 2
    controllers: tuple[str, ...]      # v1: from the mount options; v2: from cgroup.controllers
    mountpoint: Path
    own_path: str                     # our cgroup, as /proc/self/cgroup names it ("/process_api/x")
    own_dir: Path                     # the directory of our cgroup, on this host

    @property
    def at_root(self) -> bool:
        """True when our cgroup is the root of the hierarchy (as in a fresh VM's shell)."""
        return self.own_dir == self.mountpoint


@dataclass(frozen=True)
class CgroupLayout:
    mode: CgroupMode
    v1: dict[str, Hierarchy] = field(default_factory=dict)  # controller name → its hierarchy
    unified: Hierarchy | None = None                         # the cgroup2 mount, if any

    def describe(self) -> str:
        if self.mode is CgroupMode.NONE:
            return "no cgroup filesystem is mounted"
        parts = []
        if self.v1:
            parts.append("v1 controllers: " + " ".join(sorted(self.v1)))
        if self.unified:
            ctl = " ".join(self.unified.controllers) or "none"
            parts.append(f"cgroup2 at {self.unified.mountpoint} (controllers: {ctl})")
        return "; ".join(parts)


def _unescape(field_: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040 ...)."""
    return field_.encode().decode("unicode_escape") if "\\" in field_ else field_


def _mounts(paths: HostPaths) -> list[tuple[str, str, str, list[str]]]:
    """(fstype, mount root, mount point, super options) of every cgroup/cgroup2 mount."""
    found = []
    for line in (paths.proc / "self/mountinfo").read_text().splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        lf, rf = left.split(), right.split()
        if len(lf) < 5 or len(rf) < 3 or rf[0] not in ("cgroup", "cgroup2"):
            continue
        found.append((rf[0], _unescape(lf[3]), _unescape(lf[4]), rf[2].split(",")))
    return found


def _own_paths(paths: HostPaths) -> dict[str, str]:
    """{controller: path} for v1 lines, plus {"": path} for the v2 line; named hierarchies
    ("name=systemd") are kept under their full name."""
    own = {}
    for line in (paths.proc / "self/cgroup").read_text().splitlines():
        hid, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hid == "0" and controllers == "":
            own[""] = path
        else:
            for c in controllers.split(","):
                own[c] = path
    return own


def _own_dir(mountpoint: str, mount_root: str, own_path: str) -> Path:
    rel = PurePosixPath(own_path).relative_to(mount_root) if own_path.startswith(mount_root) \
        else PurePosixPath(own_path.lstrip("/"))
    return Path(mountpoint) / rel


def _host_path(paths: HostPaths, mountpoint: str) -> Path:
    """A mount point as seen on this host; on a fake tree /sys/... maps to paths.sys/..."""
    if mountpoint.startswith("/sys/"):
        return paths.sys / mountpoint[len("/sys/"):]
    return Path(mountpoint)


def detect(paths: HostPaths = HostPaths()) -> CgroupLayout:
    """Read mountinfo and /proc/self/cgroup and classify the host."""
    own = _own_paths(paths)
    v1: dict[str, Hierarchy] = {}
    unified = None
    for fstype, root, mountpoint, opts in _mounts(paths):
        host_mp = _host_path(paths, mountpoint)
        if fstype == "cgroup2":
            if unified is not None or "" not in own:
                continue  # the same hierarchy mounted twice: the first mount is enough
            own_dir = _host_path(paths, str(_own_dir(mountpoint, root, own[""])))
            try:
                ctl = tuple((own_dir / "cgroup.controllers").read_text().split())
            except OSError:
                ctl = ()
            unified = Hierarchy(2, ctl, host_mp, own[""], own_dir)
            continue
        controllers = tuple(o for o in opts if o not in ("rw", "ro") and not o.startswith(
            ("name=", "release_agent=", "clone_children", "noprefix", "xattr", "cpuset_v2_mode",
             "favordynmods", "nsdelegate", "memory_")))
        for c in controllers:
            if c in own and c not in v1:
                own_dir = _host_path(paths, str(_own_dir(mountpoint, root, own[c])))
                v1[c] = Hierarchy(1, controllers, host_mp, own[c], own_dir)
    if v1 and unified:
        mode = CgroupMode.HYBRID
    elif v1:
        mode = CgroupMode.V1
    elif unified:
        mode = CgroupMode.V2
    else:
        mode = CgroupMode.NONE
    return CgroupLayout(mode, v1, unified)


_this_process: CgroupLayout | None = None


def current() -> CgroupLayout:
    """detect() for this host, done once per process. Our own cgroup does not move under us (only
    we move our processes), so the answer holds; a zygote detects once when it starts and every
    container creator it forks inherits the answer instead of re-reading mountinfo (~0.5 ms)."""
    global _this_process
    if _this_process is None:
        _this_process = detect()
    return _this_process
