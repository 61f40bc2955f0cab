"""The container manager's removal of a pod's cgroup (nodeagent/cm.py): the whole subtree, deepest
first — here on plain directories standing for a cgroup v2 tree and a v1 one (rmdir behaves the
same on an empty directory; on cgroupfs the control files do not count)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from nodeagent.cm import ContainerManager
from runtime.cgroups.layout import CgroupMode


def manager(layout) -> ContainerManager:
    cm = ContainerManager()
    cm._layout = layout
    return cm


def test_a_pod_cgroup_goes_with_its_exited_containers_cgroups_v2(tmp_path):
    pod = tmp_path / "kubepods" / "besteffort" / "podu-1"
    (pod / "c1").mkdir(parents=True)
    (pod / "c2" / "deeper").mkdir(parents=True)
    other = tmp_path / "kubepods" / "besteffort" / "podu-2" / "c3"
    other.mkdir(parents=True)
    manager(SimpleNamespace(mode=CgroupMode.V2, unified=SimpleNamespace(own_dir=tmp_path))).remove_pod("u-1")
    assert not pod.exists() and other.is_dir()


def test_every_v1_hierarchy_loses_the_pod(tmp_path):
    hierarchies = {c: SimpleNamespace(own_dir=tmp_path / c) for c in ("memory", "cpu", "pids")}
    for h in hierarchies.values():
        (h.own_dir / "kubepods" / "podu-1" / "c1").mkdir(parents=True)
    manager(SimpleNamespace(mode=CgroupMode.V1, v1=hierarchies)).remove_pod("u-1")
    assert not any((h.own_dir / "kubepods" / "podu-1").exists() for h in hierarchies.values())


def test_a_cgroup_that_will_not_go_is_an_error_to_retry(tmp_path, monkeypatch):
    from runtime.cgroups.base import CgroupError

    pod = tmp_path / "kubepods" / "podu-1"
    (pod / "c1").mkdir(parents=True)
    (pod / "c1" / "a-file").write_text("")           # not empty: rmdir fails (as EBUSY would)
    with pytest.raises(CgroupError):
        manager(SimpleNamespace(mode=CgroupMode.V2, unified=SimpleNamespace(own_dir=tmp_path))).remove_pod("u-1")
    assert pod.is_dir()


def test_down_removes_this_nodes_pods_and_leaves_another_nodes_and_the_tree_they_need(tmp_path):
    # two `nodeagent up` on one machine share our cgroup: down of one must not take the other's
    # (an empty pod cgroup of a pod being started, or finished, would go with a plain rmdir)
    qos = tmp_path / "kubepods" / "besteffort"
    (qos / "podmine" / "c1").mkdir(parents=True)
    (qos / "podtheirs").mkdir(parents=True)
    (tmp_path / "kubepods" / "burstable").mkdir()
    cm = manager(SimpleNamespace(mode=CgroupMode.V2, unified=SimpleNamespace(own_dir=tmp_path)))
    assert cm.cleanup({"mine", "gone-already"}) == []
    assert not (qos / "podmine").exists() and (qos / "podtheirs").is_dir()
    assert not (tmp_path / "kubepods" / "burstable").exists()     # empty: ours to remove
    assert qos.is_dir()                                           # the other node's pod is below
    assert cm.cleanup({"theirs"}) == [] and not (tmp_path / "kubepods").exists()
