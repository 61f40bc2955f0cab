"""Inside the VM: the distribution kernel with cgroup v2 unified, as on a Vagrant box.

These prove the vm tier really runs in the VM (the cgroup layout differs from the hybrid host) and
that `nodeagent doctor`'s claims about v2 hold: what it calls usable, we can really use.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CGROUP = Path("/sys/fs/cgroup")
WANTED = {"cpu", "memory", "pids", "io"}


def _own_cgroup() -> Path:
    line = next(l for l in Path("/proc/self/cgroup").read_text().splitlines() if l.startswith("0::"))
    return CGROUP / line[3:].lstrip("/")


def test_this_is_a_cgroup_v2_unified_host():
    # The host these tests are launched from is hybrid (/sys/fs/cgroup is a tmpfs holding v1
    # hierarchies); in the VM it is the cgroup2 filesystem itself, with the controllers we need.
    fstype = subprocess.run(["stat", "-f", "-c", "%T", str(CGROUP)], capture_output=True,
                            text=True).stdout.strip()
    assert fstype == "cgroup2fs"
    assert WANTED <= set((CGROUP / "cgroup.controllers").read_text().split())


def test_doctor_reports_v2_with_cpu_memory_pids_io_usable():
    # The VM's own /var/lib and TMPDIR are small tmpfs mounts; the disk check looks at the host's
    # disk, shared at /tmp, instead.
    out = subprocess.run([sys.executable, "-m", "nodeagent", "doctor", "--json", "--state-dir", "/tmp"],
                         capture_output=True, text=True, timeout=60)
    doc = json.loads(out.stdout)
    assert doc["cgroup"]["mode"] == "v2"
    assert WANTED <= set(doc["cgroup"]["usable"])
    rows = {c["check"]: c for c in doc["checks"]}
    for c in WANTED:
        assert rows[f"cgroup {c}"]["verdict"] == "ok", rows[f"cgroup {c}"]
    assert out.returncode == 0, out.stdout


@pytest.fixture
def child_cgroup():
    """A child of our own cgroup with cpu, memory, pids and io enabled for it, removed afterwards."""
    own = _own_cgroup()
    subtree = own / "cgroup.subtree_control"
    before = set(subtree.read_text().split())
    subtree.write_text(" ".join(f"+{c}" for c in sorted(WANTED)))
    child = own / f"nodeagent-vmtest-{os.getpid()}"
    child.mkdir()
    try:
        yield child
    finally:
        child.rmdir()
        off = set(subtree.read_text().split()) - before
        if off:
            subtree.write_text(" ".join(f"-{c}" for c in sorted(off)))


def test_what_doctor_calls_usable_really_takes_limits(child_cgroup):
    (child_cgroup / "memory.max").write_text("33554432")
    (child_cgroup / "pids.max").write_text("64")
    (child_cgroup / "cpu.max").write_text("50000 100000")
    (child_cgroup / "io.weight").write_text("default 200")
    assert (child_cgroup / "memory.max").read_text().strip() == "33554432"
    assert (child_cgroup / "pids.max").read_text().strip() == "64"
    assert (child_cgroup / "cpu.max").read_text().split() == ["50000", "100000"]
    assert "200" in (child_cgroup / "io.weight").read_text()


def test_memory_max_oom_kills_inside_the_child_cgroup(child_cgroup):
    (child_cgroup / "memory.max").write_text(str(32 << 20))
    (child_cgroup / "memory.swap.max").write_text("0")
    code = ("import os; open(%r, 'w').write(str(os.getpid())); b = bytearray(100 << 20)"
            % str(child_cgroup / "cgroup.procs"))
    proc = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert proc.returncode == -9
    events = dict(l.split() for l in (child_cgroup / "memory.events").read_text().splitlines())
    assert int(events["oom_kill"]) >= 1
