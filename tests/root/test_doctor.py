"""`nodeagent doctor` on this very host, checked against independent evidence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CG = Path("/sys/fs/cgroup")


def _doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nodeagent", "doctor", *args],
                          capture_output=True, text=True, timeout=60)


def _fs_type(path: Path) -> str:
    return subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True,
                          text=True).stdout.strip()


def _expected_mode() -> str:
    """The cgroup mode by another method than doctor's: the filesystem type of the mounts."""
    if _fs_type(CG) == "cgroup2fs":
        return "v2"
    v1 = any(_fs_type(p) == "cgroupfs" for p in CG.iterdir() if p.is_dir())
    v2 = any(_fs_type(p) == "cgroup2fs" for p in CG.iterdir() if p.is_dir())
    return "hybrid" if v1 and v2 else "v1"


def _own_v1_dir(controller: str) -> Path:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctl, path = line.split(":", 2)
        if controller in ctl.split(","):
            return CG / controller / path.lstrip("/")
    raise LookupError(controller)


def test_doctor_json_reports_this_hosts_cgroup_mode_and_usable_controllers():
    out = _doctor("--json")
    doc = json.loads(out.stdout)
    mode = _expected_mode()
    assert doc["cgroup"]["mode"] == mode
    assert {"cpu", "memory", "pids"} <= set(doc["cgroup"]["usable"])
    assert out.returncode == (1 if doc["verdict"] == "fail" else 0)
    assert out.returncode == 0, out.stdout


def test_doctor_leaves_no_probe_cgroups_behind():
    _doctor("--json")
    assert list(CG.glob("**/nodeagent-probe-*")) == []


@pytest.mark.skipif(_expected_mode() == "v2", reason="v1 hierarchies only on v1/hybrid hosts")
def test_a_v1_memory_limit_really_works_where_doctor_says_memory_is_usable(tmp_path):
    """Doctor's 'usable' is a promise; keep it: a 32 MiB limit OOM-kills a 100 MiB allocation."""
    doc = json.loads(_doctor("--json").stdout)
    assert "memory" in doc["cgroup"]["usable"]
    child = _own_v1_dir("memory") / f"nodeagent-test-{os.getpid()}"
    child.mkdir()
    try:
        (child / "memory.limit_in_bytes").write_text(str(32 << 20))
        code = ("import os; open(%r, 'w').write(str(os.getpid())); b = bytearray(100 << 20)"
                % str(child / "cgroup.procs"))
        proc = subprocess.run([sys.executable, "-c", code], timeout=60)
        assert proc.returncode == -9
        assert "oom_kill 1" in (child / "memory.oom_control").read_text()
    finally:
        child.rmdir()


def test_doctor_table_is_human_readable():
    out = _doctor()
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["CHECK", "VERDICT", "DETAIL"]
    assert any(l.startswith("cgroup mode") for l in lines)
    assert "failed," in lines[-1]
