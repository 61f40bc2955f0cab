"""The parts of the cgroup drivers that need no kernel: where a container's cgroup goes, and
reading OOM counts and processes back from the files (on fake directories)."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from runtime.cgroups.base import CgroupError, load_cgroup, locate, relative_path


def test_paths_are_taken_relative_to_our_own_cgroup():
    assert str(relative_path("/process_api/x", None, "nodeagent/c1")) == "nodeagent/c1"
    assert str(relative_path("/process_api/x", "pods/p1/c1", "unused")) == "pods/p1/c1"
    assert str(relative_path("/process_api/x", "/process_api/x/pods/c1", "unused")) == "pods/c1"
    assert str(relative_path("/", "/anything/c1", "unused")) == "anything/c1"


@pytest.mark.parametrize("path,problem", [
    ("/elsewhere/c1", "outside our own cgroup"),
    ("a/../../b", "'..' is not allowed"),
    ("system.slice:docker:c1", "systemd form"),
    ("/process_api/x", "names our own cgroup"),
])
def test_paths_that_leave_our_subtree_are_refused(path, problem):
    with pytest.raises(CgroupError, match=problem):
        relative_path("/process_api/x", path, "unused")


def test_an_absolute_path_is_relative_to_the_hierarchy_root_as_the_spec_says():
    # Inside our own cgroup: based there, as before (nothing above it is touched); elsewhere:
    # below the mount point, as runc does. Which paths a caller may use is the caller's rule.
    from pathlib import Path

    from runtime.cgroups.layout import Hierarchy
    h = Hierarchy(1, ("memory",), Path("/sys/fs/cgroup/memory"), "/process_api/x",
                  Path("/sys/fs/cgroup/memory/process_api/x"))
    assert locate(h, "/process_api/x/pods/c1", "unused") == (h.own_dir, PurePosixPath("pods/c1"))
    assert locate(h, "/cgrouptest", "unused") == (h.mountpoint, PurePosixPath("cgrouptest"))
    assert locate(h, "pods/c1", "unused") == (h.own_dir, PurePosixPath("pods/c1"))
    assert locate(h, None, "nodeagent/c1") == (h.own_dir, PurePosixPath("nodeagent/c1"))
    for bad, problem in (("/", "root cgroup"), ("/process_api/x", "our own cgroup"),
                         ("/a/../b", "'..' is not allowed")):
        with pytest.raises(CgroupError, match=problem):
            locate(h, bad, "unused")


def test_v2_oom_kills_and_procs_from_the_files(tmp_path):
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n")
    (tmp_path / "cgroup.procs").write_text("12\n34\n")
    cg = load_cgroup({"version": 2, "dirs": {"unified": str(tmp_path)}})
    assert cg.oom_kills() == 1
    assert cg.procs() == [12, 34]
    assert cg.container_mounts() == [("cgroup2", "", "")]


def test_v1_oom_kills_from_memory_oom_control(tmp_path):
    mem, pids = tmp_path / "memory", tmp_path / "pids"
    mem.mkdir()
    pids.mkdir()
    (mem / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    (mem / "cgroup.procs").write_text("5\n")
    (pids / "cgroup.procs").write_text("5\n7\n")
    cg = load_cgroup({"version": 1, "dirs": {"memory": str(mem), "pids": str(pids)},
                      "mounts": [["memory", "cgroup", "memory"], ["pids", "cgroup", "pids"]]})
    assert cg.oom_kills() == 2
    assert cg.procs() == [5, 7]
    assert cg.container_mounts() == [("cgroup", "memory", "memory"), ("cgroup", "pids", "pids")]


def test_a_failed_write_names_the_file_and_value(tmp_path):
    cg = load_cgroup({"version": 2, "dirs": {"unified": str(tmp_path)}})
    with pytest.raises(CgroupError) as e:
        cg._write(tmp_path / "memory.max", "64")
    assert str(tmp_path / "memory.max") in str(e.value) and "'64'" in str(e.value)
    assert "not available" in str(e.value)


def test_a_controller_the_parent_did_not_delegate_is_one_clear_error(tmp_path):
    from pathlib import Path

    from runtime.cgroups.base import create_cgroup
    from runtime.cgroups.layout import CgroupLayout, CgroupMode, Hierarchy
    from runtime.spec.model import Memory, Resources

    own = tmp_path / "own"
    own.mkdir()
    layout = CgroupLayout(CgroupMode.V2, unified=Hierarchy(2, ("cpu", "pids"), Path(tmp_path), "/own", own))
    with pytest.raises(CgroupError) as e:
        create_cgroup(layout, None, "nodeagent/c1", Resources(memory=Memory(limit=1 << 26)))
    assert "controller memory is not available" in str(e.value)
    assert list(own.iterdir()) == []          # nothing was made
