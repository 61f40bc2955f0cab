"""The root filesystem's steps in order, on the recording fake (no root): what is mounted where,
and that nothing happens in the wrong order — the root before anything in it, every mount before
pivot_root, the masks after it, the read-only root last."""

from __future__ import annotations

import errno
import os

import pytest

from runtime.errors import StepError
from runtime.explain import Steps
from runtime.rootfs import RootfsPlan, setup_rootfs
from runtime.spec.defaults import DEFAULT_MASKED_PATHS, default_spec
from runtime.sys.consts import MNT_DETACH, MS_PRIVATE, MS_RDONLY, MS_REC
from tests.unit.runtime.recordingfs import RecordingWithFds


@pytest.fixture()
def bundle(tmp_path, monkeypatch):
    for d in ("rootfs", "lower/bin", "upper", "work"):
        (tmp_path / d).mkdir(parents=True)
    monkeypatch.chdir(tmp_path)   # pivot_root's chdir into the new root is real: undone after
    return tmp_path


def _setup(bundle, sys, **spec_kw):
    spec = default_spec(("/bin/sh",), str(bundle / "rootfs"), layers=(str(bundle / "lower"),), **spec_kw)
    setup_rootfs(sys, spec, RootfsPlan(str(bundle / "rootfs"), str(bundle / "upper"), str(bundle / "work")),
                 None, False, Steps())
    return spec


def test_the_steps_come_in_their_order(bundle):
    s = RecordingWithFds()
    _setup(bundle, s, readonly=True)
    mounts = s.calls_to("mount")
    # 1. the whole tree private, so nothing we mount propagates back to the host
    assert mounts[0].args[:2] == (None, "/") and mounts[0].args[3] & (MS_REC | MS_PRIVATE) == MS_REC | MS_PRIVATE
    # 2. the overlay: the image's layers below, the container's own upper and work directories
    source, target, fstype, _, data = mounts[1].args
    assert (source, target, fstype) == ("overlay", str(bundle / "rootfs"), "overlay")
    assert f"lowerdir={bundle / 'lower'}" in data and f"upperdir={bundle / 'upper'}" in data
    # 3. the kernel filesystems, each on a mount point made inside the root (an fd, never a path)
    kinds = [c.args[2] for c in mounts[2:]]
    assert kinds[:3] == ["proc", "tmpfs", "devpts"] and "sysfs" in kinds and "mqueue" in kinds
    assert all(c.args[1].startswith("/proc/self/fd/") for c in mounts[2:] if c.args[2] in ("proc", "sysfs"))
    assert {d for d in os.listdir(bundle / "rootfs")} >= {"proc", "dev", "sys"}
    # 4. the device nodes a container needs, in its own /dev
    assert [os.path.basename(c.args[0]) for c in s.calls_to("mknod")] == \
        ["null", "zero", "full", "random", "urandom", "tty"]
    names = s.names()
    pivot = names.index("pivot_root")
    assert names.index("mknod") < pivot and max(i for i, n in enumerate(names[:pivot]) if n == "mount") < pivot
    # 5. pivot_root, then the old root detached
    assert s.calls_to("umount2")[0].args == (".", MNT_DETACH)
    # 6. the masks after pivot_root, on the container's own /proc and /sys
    masked = [c.args[1] for c in mounts if c.args[1] in DEFAULT_MASKED_PATHS]
    assert masked and all(mounts.index(c) > names[:pivot].count("mount") for c in mounts if c.args[1] in masked)
    # 7. the read-only root last
    last = mounts[-1]
    assert last.args[1] == "/" and last.args[3] & MS_RDONLY


def test_a_writable_root_is_not_remounted_read_only(bundle):
    s = RecordingWithFds()
    _setup(bundle, s)
    assert not any(c.args[1] == "/" and c.args[3] & MS_RDONLY for c in s.calls_to("mount"))


def test_a_failed_mount_names_its_step(bundle):
    s = RecordingWithFds()
    s.fail("mount", errno.EPERM, when=lambda call: call.args[2] == "proc")
    with pytest.raises(StepError) as e:
        _setup(bundle, s)
    assert e.value.step == "mount /proc (proc)"
    assert "pivot_root" not in s.names()          # nothing after the failed step was tried
