"""A container's cgroup, whatever the cgroup version: the interface the rest of the runtime uses.

The runtime asks four things of cgroups, and this class is their whole vocabulary:

    create_cgroup(layout, path, resources)   make the cgroup (in every hierarchy we use) and write
                                             the limits *before* any process is in it
    cg.join_self()                           the container's init or an exec'd process moves itself in
    cg.oom_kills() / cg.procs() / cg.kill_all()
    cg.destroy()                             remove it again (when empty)

`V2Cgroup` (v2.py) and `V1Cgroup` (v1.py) implement it; `create_cgroup` (the package's face,
runtime/cgroups/__init__.py) picks one from the host's CgroupLayout. A Cgroup serialises to a small dict (`to_state`) kept in the container's state
file, so the supervisor, `kill` and `delete` — other processes, maybe after a restart — find the
same directories again with `load_cgroup`.

Where a container's cgroup goes: always *below our own cgroup* in each hierarchy (delegation: we
only manage what is ours). The spec's linux.cgroupsPath is taken relative to it; an absolute path
is accepted only if it already lies inside our own cgroup; ".." is refused.

Every write goes through `_write`, which makes one write(2) per value (cgroup files take a value
per write call), reports the shell equivalent to the --explain printer, and turns an OSError into
a CgroupError naming the file, the value and the errno.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from runtime.cgroups.layout import CgroupLayout, CgroupMode
from runtime.errors import ContainerError

Explain = Callable[[str], None]


class CgroupError(ContainerError):
    """A cgroup operation failed; carries the file, the value and the errno where there is one."""

    def __init__(self, message: str, path: str | None = None, value: str | None = None,
                 err: int | None = None):
        self.path, self.value, self.errno = path, value, err
        super().__init__(message)


def write_error(path: Path, value: str, e: OSError) -> CgroupError:
    hint = ""
    if e.errno == errno.ENOENT:
        hint = " (the controller is not available in this cgroup)"
    elif e.errno == errno.EBUSY and path.name == "cgroup.subtree_control":
        hint = " (cgroup v2 allows controllers only in cgroups without processes of their own)"
    return CgroupError(f"writing {value!r} to {path}: {os.strerror(e.errno)}{hint}", str(path), value, e.errno)


def relative_path(layout_own: str, cgroups_path: str | None, default: str) -> PurePosixPath:
    """The container's cgroup path relative to our own cgroup, from the spec's cgroupsPath (one
    inside our own cgroup when absolute; see `locate` for one anywhere in the hierarchy)."""
    raw = cgroups_path or default
    if ":" in raw and not raw.startswith("/"):
        raise CgroupError(f"linux.cgroupsPath {raw!r}: the systemd form slice:prefix:name is not "
                          "supported; give a path")
    p = PurePosixPath(raw)
    if ".." in p.parts:
        raise CgroupError(f"linux.cgroupsPath {raw!r}: '..' is not allowed")
    if p.is_absolute():
        own = PurePosixPath(layout_own)
        try:
            p = p.relative_to(own)
        except ValueError:
            raise CgroupError(f"linux.cgroupsPath {raw!r} is outside our own cgroup {own}") from None
    if not p.parts:
        raise CgroupError(f"linux.cgroupsPath {raw!r} names our own cgroup, not a new one below it")
    return p


def locate(hierarchy, cgroups_path: str | None, default: str) -> tuple[Path, PurePosixPath]:
    """(base directory, path below it) of the container's cgroup in `hierarchy` (a layout
    Hierarchy). A relative cgroupsPath is below our own cgroup; an absolute one is, as the OCI
    spec says and runc does, relative to the hierarchy's mount point — usually inside our own
    cgroup (then based there, so nothing above it is touched), but anywhere the caller asks: which
    cgroups a caller may use is the caller's policy (the agent only ever gives relative paths),
    not the runtime's."""
    raw = cgroups_path or default
    if raw.startswith("/") and ".." not in PurePosixPath(raw).parts:
        p = PurePosixPath(raw)
        own = PurePosixPath(hierarchy.own_path)
        if p != own and own in p.parents:
            return hierarchy.own_dir, p.relative_to(own)
        if not p.relative_to("/").parts:
            raise CgroupError(f"linux.cgroupsPath {raw!r} names the root cgroup, not a new one")
        if p == own:
            raise CgroupError(f"linux.cgroupsPath {raw!r} names our own cgroup, not a new one below it")
        return hierarchy.mountpoint, p.relative_to("/")
    return hierarchy.own_dir, relative_path(hierarchy.own_path, cgroups_path, default)


def remove_made(made: list[Path]) -> None:
    """Undo a failed create: remove the directories it made, deepest first. One that will not go
    (EBUSY: another container created a child in an intermediate meanwhile) is not ours to force."""
    for d in reversed(made):
        try:
            os.rmdir(d)
        except OSError:
            pass


class Cgroup:
    """One container's cgroup. Subclasses know the files; this class knows how to write them."""

    version = 0

    def __init__(self, dirs: dict[str, Path], explain: Explain | None = None):
        self.dirs = dirs                    # v1: hierarchy name → dir; v2: {"unified": dir}
        self.explain = explain

    # --- the files ---------------------------------------------------------------------------------
    def _write(self, path: Path, value: str) -> None:
        if self.explain:
            self.explain(f"echo {value!r} > {path}" if " " in value else f"echo {value} > {path}")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as e:
            raise write_error(path, value, e) from e
        try:
            os.write(fd, value.encode())
        except OSError as e:
            raise write_error(path, value, e) from e
        finally:
            os.close(fd)

    @staticmethod
    def _read(path: Path) -> str:
        with open(path) as f:
            return f.read()

    def _mkdir(self, path: Path) -> bool:
        """mkdir; True if we made it, False if it was there."""
        try:
            os.mkdir(path)
        except FileExistsError:
            return False
        except OSError as e:
            raise CgroupError(f"creating cgroup {path}: {os.strerror(e.errno)}", str(path), None, e.errno) from e
        if self.explain:
            self.explain(f"mkdir {path}")
        return True

    def _mkdir_parents(self, d: Path) -> list[Path]:
        """Make the missing ancestors of `d` (e.g. "nodeagent" below our own cgroup), top down;
        return the ones we made. Usually they exist: one stat of the nearest answers that."""
        missing = []
        parent = d.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        return [p for p in reversed(missing) if self._mkdir(p)]

    # --- what every driver offers ------------------------------------------------------------------
    # Can the process that is to live in this cgroup move itself in, without waiting? (v1: yes, see
    # V1Cgroup.join_self; v2: no, so the supervisor moves the init while the init builds its root.)
    self_join_is_cheap = False

    def join_self(self) -> None:
        """Move the calling process into this cgroup ("0" means "the writer" in cgroup.procs, which
        also works from inside a new pid namespace, where our own pid number would be wrong)."""
        for d in self._proc_dirs():
            self._write(d / "cgroup.procs", "0")

    def add_pid(self, pid: int) -> None:
        for d in self._proc_dirs():
            self._write(d / "cgroup.procs", str(pid))

    def procs(self) -> list[int]:
        """Host pids of every process in the container's cgroup (empty when it has gone)."""
        pids: set[int] = set()
        for d in self._proc_dirs():
            try:
                pids.update(int(x) for x in self._read(d / "cgroup.procs").split())
            except FileNotFoundError:
                pass
        return sorted(pids)

    def _proc_dirs(self) -> list[Path]:
        return list(dict.fromkeys(self.dirs.values()))

    def destroy(self, timeout: float = 5.0) -> None:
        """rmdir every directory. A cgroup can be removed only when no process is left in it, and a
        killed process leaves its cgroup a moment after it is reaped, so EBUSY is retried briefly."""
        deadline = time.monotonic() + timeout
        for d in self._proc_dirs():
            while True:
                try:
                    os.rmdir(d)
                    if self.explain:
                        self.explain(f"rmdir {d}")
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise CgroupError(f"removing cgroup {d}: {os.strerror(e.errno)}",
                                          str(d), None, e.errno) from e
                    time.sleep(0.005)

    def to_state(self) -> dict:
        return {"version": self.version, "dirs": {k: str(v) for k, v in self.dirs.items()}}

    # --- per version -------------------------------------------------------------------------------
    def oom_kills(self) -> int:
        raise NotImplementedError

    def kill_all(self) -> None:
        raise NotImplementedError

    def kill_until_empty(self, timeout: float = 5.0) -> None:
        """SIGKILL every process in the cgroup until none is left (a fork may race one round):
        the way to kill them all where the kernel has no single switch (cgroup.kill, a freezer)."""
        import signal

        deadline = time.monotonic() + timeout
        while (pids := self.procs()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.005)

    def container_mounts(self) -> list[tuple[str, str, str]]:
        """How the container sees /sys/fs/cgroup: (fstype, subdir, mount data) to mount there after
        it has its own cgroup namespace, so that its cgroup appears as the root."""
        raise NotImplementedError


def __getattr__(name: str):
    """The driver factory moved to the package's face (runtime/cgroups/__init__.py), so that this
    module, which v1.py and v2.py build on, no longer imports them; the old names still work."""
    if name in ("create_cgroup", "load_cgroup"):
        import runtime.cgroups
        return getattr(runtime.cgroups, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
