from __future__ import annotations

from pathlib import Path

from runtime.cgroups.layout import CgroupMode, detect
from tests.fakehost import FakeHost


def test_unified_v2_host(tmp_path):
    host = FakeHost(tmp_path)
    host.cgroup_v2(own="/user.slice/session-1.scope")
    layout = detect(host.paths)
    assert layout.mode is CgroupMode.V2
    assert layout.v1 == {}
    u = layout.unified
    assert u.own_dir == tmp_path / "sys/fs/cgroup/user.slice/session-1.scope"
    assert set(u.controllers) >= {"cpu", "memory", "pids", "io"}
    assert u.at_root is False


def test_hybrid_host_like_these_machines(tmp_path):
    host = FakeHost(tmp_path)
    host.cgroup_v1(own={"memory": "/process_api/abc"})
    host.cgroup_v2(own="/", controllers="hugetlb", mountpoint="/sys/fs/cgroup/unified")
    layout = detect(host.paths)
    assert layout.mode is CgroupMode.HYBRID
    assert layout.v1["memory"].own_dir == tmp_path / "sys/fs/cgroup/memory/process_api/abc"
    assert layout.v1["cpu"].at_root
    assert "name=systemd" not in layout.v1 and "systemd" not in layout.v1
    assert layout.unified.controllers == ("hugetlb",)
    assert layout.unified.at_root


def test_pure_v1_host(tmp_path):
    host = FakeHost(tmp_path)
    host.cgroup_v1()
    assert detect(host.paths).mode is CgroupMode.V1


def test_no_cgroups_mounted(tmp_path):
    host = FakeHost(tmp_path)
    host.write("proc/self/mountinfo", "22 1 0:20 / / rw - ext4 /dev/vda rw\n")
    host.write("proc/self/cgroup", "")
    assert detect(host.paths).mode is CgroupMode.NONE


def test_comounted_v1_controllers_share_one_hierarchy(tmp_path):
    host = FakeHost(tmp_path)
    host.write("proc/self/mountinfo",
               "30 1 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n")
    host.write("proc/self/cgroup", "3:cpu,cpuacct:/k\n")
    layout = detect(host.paths)
    assert layout.v1["cpu"] == layout.v1["cpuacct"]
    assert layout.v1["cpu"].controllers == ("cpu", "cpuacct")
    assert layout.v1["cpu"].own_dir == tmp_path / "sys/fs/cgroup/cpu,cpuacct/k"


def test_mount_root_inside_the_hierarchy_is_respected(tmp_path):
    # A container given the sub-tree /kubepods/pod1 mounted at /sys/fs/cgroup: our path is relative to it.
    host = FakeHost(tmp_path)
    host.write("proc/self/mountinfo",
               "40 1 0:40 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
    host.write("proc/self/cgroup", "0::/kubepods/pod1/c1\n")
    host.write("sys/fs/cgroup/c1/cgroup.controllers", "cpu memory\n")
    layout = detect(host.paths)
    assert layout.unified.own_dir == tmp_path / "sys/fs/cgroup/c1"
    assert layout.unified.controllers == ("cpu", "memory")


def test_escaped_mountpoints_are_unescaped(tmp_path):
    host = FakeHost(tmp_path)
    host.write("proc/self/mountinfo", "40 1 0:40 / /sys/fs/cgroup/my\\040tree rw - cgroup2 cgroup2 rw\n")
    host.write("proc/self/cgroup", "0::/\n")
    assert detect(host.paths).unified.mountpoint == Path(tmp_path / "sys/fs/cgroup/my tree")
