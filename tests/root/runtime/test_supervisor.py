"""The crash-proof process model (acceptance): the container outlives whoever started it, and its
exit is recorded by its supervisor even when nobody is watching; logs in CRI format."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.busybox import REPO
from tests.waits import wait_exit


def _wait(rt, cid, want, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = rt.runtime("state", cid)
        if out.returncode == 0 and json.loads(out.stdout)["status"] == want:
            return json.loads(out.stdout)
        time.sleep(0.05)
    raise AssertionError(f"{cid} never became {want}: {rt.runtime('state', cid).stdout}")


def _record(rt, cid) -> dict:
    return json.loads((rt.root / cid / "state.json").read_text())


def test_kill_9_of_the_starting_process_leaves_the_container_running_and_its_exit_recorded(rt):
    cid = rt.name()
    bundle = rt.bundle(["sh", "-c", "sleep 2; exit 7"])
    cli = subprocess.Popen([sys.executable, "-m", "nodeagent", "runtime", "--root", str(rt.root),
                            "--storage", str(rt.storage), "run", "--keep", "-b", str(bundle), cid],
                           cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(rt, cid, "running")
        cli.send_signal(signal.SIGKILL)
        assert cli.wait(10) == -signal.SIGKILL
        record = _record(rt, cid)
        assert rt.state(cid)["status"] == "running"          # still running without its starter
        assert os.path.exists(f"/proc/{record['pid']}")
        # The supervisor is nobody's child of ours: it was double-forked away from the CLI.
        ppid = int(open(f"/proc/{record['shim_pid']}/stat").read().rsplit(")", 1)[1].split()[1])
        assert ppid != cli.pid
        state = _wait(rt, cid, "stopped")
    finally:
        if cli.poll() is None:
            cli.kill()
    assert state["exitCode"] == 7
    assert state["reason"] == "Error"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", state["finishedAt"])
    assert state["finishedAt"] > state["startedAt"]


def test_a_detached_container_records_its_exit_with_nobody_watching(rt):
    cid = rt.name()
    out = rt.run("-d", "--name", cid, str(rt.rootfs), "sh", "-c", "sleep 0.5; exit 3")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == cid
    wait_exit(_record(rt, cid)["shim_pid"])   # nobody asks while it ends; its supervisor then exits
    state = rt.state(cid)
    assert (state["status"], state["exitCode"], state["reason"]) == ("stopped", 3, "Error")


def test_if_the_supervisor_dies_the_container_dies_with_it(rt):
    cid = rt.name()
    assert rt.run("-d", "--name", cid, str(rt.rootfs), "sleep", "30").returncode == 0
    record = _record(rt, cid)
    os.kill(record["shim_pid"], signal.SIGKILL)               # our own process: started by this test
    wait_exit(record["pid"])                                  # PR_SET_PDEATHSIG(SIGKILL)
    state = rt.state(cid)
    assert state["status"] == "stopped"
    assert "supervisor died" in state["reason"]
    assert rt.runtime("delete", cid).returncode == 0


def test_output_goes_to_a_cri_log_file(rt):
    cid = rt.name()
    out = rt.run("-d", "--name", cid, str(rt.rootfs), "sh", "-c",
                 "echo hello; echo oops >&2; printf 'no newline'")
    assert out.returncode == 0, out.stderr
    wait_exit(_record(rt, cid)["shim_pid"])                   # it has recorded the exit
    lines = (rt.root / cid / "container.log").read_text().splitlines()
    parsed = [line.split(" ", 3) for line in lines]
    for stamp, *_ in parsed:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", stamp)
    assert sorted((s, t, c) for _, s, t, c in parsed) == [
        ("stderr", "F", "oops"), ("stdout", "F", "hello"), ("stdout", "F", "no newline")]


def test_rm_is_done_by_the_supervisor_even_if_the_caller_is_killed(rt):
    cid = rt.name()
    cli = subprocess.Popen([sys.executable, "-m", "nodeagent", "run", "--root", str(rt.root),
                            "--storage", str(rt.storage), "--rm", "--name", cid, str(rt.rootfs),
                            "sleep", "1"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(rt, cid, "running")
        shim = _record(rt, cid)["shim_pid"]
        cli.send_signal(signal.SIGKILL)
        cli.wait(10)
        wait_exit(shim)                                       # it removes the container, then exits
    finally:
        if cli.poll() is None:
            cli.kill()
    assert not (rt.root / cid).exists()
    assert not (rt.storage / cid).exists()


@pytest.mark.vm  # on cgroup v2 the worker-become-supervisor moves the init into its cgroup
def test_a_zygote_creates_containers_for_the_cli(rt):
    from runtime.zygote import server as zygote

    pid = zygote.start_detached(str(rt.root))
    try:
        bundle = rt.bundle(["sh", "-c", "echo via zygote; grep CapEff /proc/self/status; exit 4"])
        out = rt.runtime("run", "-b", str(bundle), rt.name())
        assert (out.returncode, out.stdout.splitlines()[0]) == (4, "via zygote"), out.stderr
        assert out.stdout.splitlines()[1].split()[-1] == "00000000a80425fb"
        cid = rt.name()
        assert rt.runtime("run", "-d", "-b", str(rt.bundle(["sleep", "30"])), cid).returncode == 0
        record = _record(rt, cid)
        # The zygote's worker created the container and became its supervisor: a child of the
        # zygote (which never waits for it: the kernel reaps it), not of the CLI.
        ppid = int(open(f"/proc/{record['shim_pid']}/stat").read().rsplit(")", 1)[1].split()[1])
        assert ppid == pid
        failing = rt.name()
        out = rt.runtime("run", "-b", str(rt.bundle(["nosuch"])), failing)
        assert out.returncode == 1 and "not found in $PATH" in out.stderr
        assert not (rt.root / failing).exists()          # a failed create leaves nothing behind
        assert rt.runtime("run", "-d", "-b", str(bundle), cid).stderr.strip().endswith(
            f"container name '{cid}' is already in use")
    finally:
        os.kill(pid, signal.SIGTERM)   # the zygote this test started
        wait_exit(pid)
    # The zygote's end is not its containers' end.
    assert _wait(rt, cid, "running")["pid"] == record["pid"]
    assert rt.runtime("delete", "--force", cid).returncode == 0
