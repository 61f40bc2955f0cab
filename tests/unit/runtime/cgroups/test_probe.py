"""The delegation probe on fake trees. (On a real cgroupfs, mkdir makes the controller files appear;
in a plain directory it does not, which is how the "key file missing" path is exercised here. The real
probe is run by tests/root/test_doctor.py and, for v2, in the VM.)"""

from __future__ import annotations

import shutil

from runtime.cgroups.layout import detect
from runtime.cgroups.probe import probe
from tests.fakehost import FakeHost


def _leftovers(root):
    return sorted(p for p in root.rglob("nodeagent-probe-*"))


def test_v2_in_the_root_cgroup_can_enable_everything_it_has(tmp_path):
    host = FakeHost(tmp_path)
    host.cgroup_v2(own="/", controllers="cpu io memory pids")
    res = probe(detect(host.paths))
    assert {c for c, p in res.items() if p.usable} == {"cpu", "io", "memory", "pids"}
    assert "root cgroup" in res["cpu"].detail
    assert _leftovers(tmp_path) == []


def test_v2_controller_not_delegated_by_the_parent_is_not_usable(tmp_path):
    host = FakeHost(tmp_path)
    host.cgroup_v2(own="/system.slice/nodeagent.service", controllers="memory pids", procs="123\n")
    layout = detect(host.paths)
    res = probe(layout)
    assert res["memory"].usable
    assert "leaf" in res["memory"].detail          # our cgroup has processes: move ourselves first
    assert "cpu" not in res                         # only what cgroup.controllers lists is probed


def test_v2_already_enabled_in_subtree_control(tmp_path):
    host = FakeHost(tmp_path)
    host.cgroup_v2(own="/a", controllers="cpu memory", subtree="cpu")
    res = probe(detect(host.paths))
    assert "enabled in our cgroup.subtree_control" in res["cpu"].detail
    assert res["memory"].usable and "can enable" in res["memory"].detail


def test_v2_unwritable_cgroup_makes_everything_unusable(tmp_path):
    host = FakeHost(tmp_path)
    own = host.cgroup_v2(own="/gone", controllers="cpu memory")
    layout = detect(host.paths)
    shutil.rmtree(own)                              # mkdir of the probe now fails with ENOENT
    res = probe(layout)
    assert not res["cpu"].usable and "cannot create a cgroup in" in res["cpu"].detail


def test_v1_missing_controller_file_and_missing_cgroup_are_reported(tmp_path):
    host = FakeHost(tmp_path)
    host.cgroup_v1(own={"memory": "/process_api/x"}, controllers=("memory", "pids"))
    layout = detect(host.paths)
    shutil.rmtree(tmp_path / "sys/fs/cgroup/memory/process_api/x")
    res = probe(layout)
    assert not res["memory"].usable
    assert "cannot create a cgroup in" in res["memory"].detail and "process_api/x" in res["memory"].detail
    assert not res["pids"].usable and "pids.max missing" in res["pids"].detail
    assert _leftovers(tmp_path) == []
