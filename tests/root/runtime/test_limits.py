"""Resource limits (acceptance): --memory 64Mi --cpus 0.5 --pids 64 on this host's cgroup v1 and,
marked vm, on the VM's cgroup v2 — the values in the files, a fork bomb, and an OOM kill."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

LIMITS = ("--memory", "64Mi", "--cpus", "0.5", "--pids", "64")
V2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()


def _cgroup_dirs(rt, name: str) -> dict[str, Path]:
    record = json.loads((rt.root / name / "state.json").read_text())
    return {k: Path(v) for k, v in record["cgroup"]["dirs"].items()}


@pytest.mark.vm
def test_limits_are_in_the_cgroup_files_inside_and_outside(rt):
    name = rt.name()
    if V2:
        inside = "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/pids.max"
    else:
        inside = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us "
                  "/sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/pids/pids.max")
    out = rt.run("-d", "--name", name, *LIMITS, str(rt.rootfs), "sh", "-c", inside + "; sleep 30")
    assert out.returncode == 0, out.stderr
    dirs = _cgroup_dirs(rt, name)
    if V2:
        d = dirs["unified"]
        assert (d / "memory.max").read_text().strip() == "67108864"
        assert (d / "cpu.max").read_text().strip() == "50000 100000"
        assert (d / "pids.max").read_text().strip() == "64"
        assert (d / "cpu.weight").read_text().strip() == "59"   # 512 shares, the 2025 curve
    else:
        assert (dirs["memory"] / "memory.limit_in_bytes").read_text().strip() == "67108864"
        assert (dirs["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "50000"
        assert (dirs["cpu"] / "cpu.cfs_period_us").read_text().strip() == "100000"
        assert (dirs["cpu"] / "cpu.shares").read_text().strip() == "512"
        assert (dirs["pids"] / "pids.max").read_text().strip() == "64"
    log = rt.root / name / "container.log"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and log.read_text().count("\n") < (3 if V2 else 4):
        time.sleep(0.05)
    seen = [line.split(" ", 3)[3] for line in log.read_text().splitlines()]
    assert seen == (["67108864", "50000 100000", "64"] if V2 else ["67108864", "50000", "100000", "64"])
    assert rt.runtime("delete", "--force", name).returncode == 0
    assert not any(d.exists() for d in dirs.values())


@pytest.mark.vm
def test_a_fork_bomb_stops_at_the_pids_limit(rt):
    # busybox sh gives up (exit 2) when it cannot fork; it counts each sleep it did start.
    script = "i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); echo $i; done"
    out = rt.run("--rm", "--pids", "64", str(rt.rootfs), "sh", "-c", script, timeout=120)
    assert out.returncode == 2
    assert "can't fork" in out.stderr
    assert out.stdout.split()[-1] == "63"       # 63 sleeps + the shell = 64 tasks, and no more


@pytest.mark.vm
def test_allocating_200mib_under_64mib_is_oom_killed_and_reported(rt):
    name = rt.name()
    out = rt.run("--name", name, *LIMITS, str(rt.rootfs),
                 "dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1", timeout=120)
    assert out.returncode == 137, out.stderr
    state = rt.state(name)
    assert state["status"] == "stopped"
    assert state["exitCode"] == 137
    assert state["oomKilled"] is True
    assert state["reason"] == "OOMKilled"
    assert rt.runtime("delete", name).returncode == 0


def test_without_a_limit_the_same_allocation_succeeds(rt):
    out = rt.run("--rm", str(rt.rootfs), "dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1",
                 timeout=120)
    assert out.returncode == 0, out.stderr
