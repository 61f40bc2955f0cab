"""The runc-style verbs over a bundle: create → start → state → kill → delete, OCI states, exec,
list, and what is left when creation fails half-way (nothing)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from runtime.spec.model import Mount


def _wait_status(rt, cid: str, want: str, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = rt.state(cid)
        if state["status"] == want or time.monotonic() > deadline:
            return state
        time.sleep(0.05)


def _host_traces(name: str) -> dict:
    """Everything a container could leave on the host, looked up independently of the runtime."""
    mounts = [l for l in Path("/proc/self/mountinfo").read_text().splitlines() if name in l]
    cgroups = [str(p) for p in Path("/sys/fs/cgroup").glob(f"**/{name}") if p.is_dir()]
    procs = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if name.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                procs.append(pid)
        except OSError:
            pass
    return {"mounts": mounts, "cgroups": cgroups, "processes": procs}


def test_create_start_state_kill_delete(rt):
    bundle = rt.bundle(["sh", "-c", "trap 'exit 42' TERM; while true; do sleep 0.1; done"])
    cid = rt.name()
    out = rt.runtime("create", "--bundle", str(bundle), cid)
    assert out.returncode == 0, out.stderr
    state = rt.state(cid)
    assert state["status"] == "created"
    assert state["pid"] > 0 and Path(f"/proc/{state['pid']}").exists()
    assert state["bundle"] == str(bundle)
    # created: the init waits, it has not exec'd the program yet
    argv0 = Path(f"/proc/{state['pid']}/cmdline").read_bytes().split(b"\0")[0]
    assert Path(argv0.decode()).name != "sh"

    assert rt.runtime("start", cid).returncode == 0
    assert rt.state(cid)["status"] == "running"
    again = rt.runtime("start", cid)
    assert again.returncode == 1 and "running" in again.stderr

    assert rt.runtime("delete", cid).returncode == 1          # running: needs --force
    assert rt.runtime("kill", cid, "TERM").returncode == 0
    state = _wait_status(rt, cid, "stopped")
    assert state["exitCode"] == 42 and state["reason"] == "Error"
    assert state["finishedAt"] >= state["startedAt"]
    assert rt.runtime("kill", cid).returncode == 1             # nothing left to signal
    assert rt.runtime("delete", cid).returncode == 0
    assert rt.runtime("state", cid).returncode == 1
    assert _host_traces(cid) == {"mounts": [], "cgroups": [], "processes": []}


def test_list_shows_each_container_with_its_status(rt):
    a, b = rt.name(), rt.name()
    bundle = rt.bundle(["sleep", "30"])
    assert rt.runtime("create", "-b", str(bundle), a).returncode == 0
    assert rt.runtime("run", "-d", "-b", str(bundle), b).returncode == 0
    rows = {s["id"]: s["status"] for s in json.loads(rt.runtime("list", "--format", "json").stdout)}
    assert rows == {a: "created", b: "running"}
    assert sorted(rt.runtime("list", "-q").stdout.split()) == sorted([a, b])
    assert rt.runtime("delete", a).returncode == 0             # created: deleted like runc does
    assert rt.runtime("delete", "--force", b).returncode == 0
    assert rt.runtime("list", "-q").stdout == ""


def test_name_in_use_is_refused(rt):
    bundle = rt.bundle(["true"])
    cid = rt.name()
    assert rt.runtime("create", "-b", str(bundle), cid).returncode == 0
    out = rt.runtime("create", "-b", str(bundle), cid)
    assert out.returncode == 1
    assert f"container name '{cid}' is already in use" in out.stderr
    assert rt.state(cid)["status"] == "created"                # the first one is untouched


def test_failed_create_names_the_step_and_leaves_nothing(rt):
    bad = Mount("/data", "nosuchfs", "none", ())
    from runtime.spec.defaults import default_mounts
    bundle = rt.bundle(["true"], mounts=default_mounts() + (bad,))
    cid = rt.name()
    out = rt.runtime("create", "-b", str(bundle), cid)
    assert out.returncode == 1
    assert "mount /data (nosuchfs)" in out.stderr and "No such device" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (rt.root / cid).exists()
    assert _host_traces(cid) == {"mounts": [], "cgroups": [], "processes": []}


def test_missing_executable_is_one_clear_line(rt):
    bundle = rt.bundle(["/bin/nope"])
    out = rt.runtime("run", "-b", str(bundle), rt.name())
    assert out.returncode == 1
    assert out.stderr.strip() == ("nodeagent runtime run: find the executable: '/bin/nope': "
                                  "no such file in the container's root filesystem")


def test_exec_runs_in_the_container_and_returns_its_status(rt):
    cid = rt.name()
    bundle = rt.bundle(["sleep", "30"])
    assert rt.runtime("run", "-d", "-b", str(bundle), cid).returncode == 0
    out = rt.runtime("exec", cid, "sh", "-c",
                     "hostname; echo $$; cat /proc/1/cmdline | tr '\\0' ' '; echo; "
                     "grep CapEff /proc/self/status; ls /proc/self/fd; exit 5")
    assert out.returncode == 5, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "bundled"
    assert int(lines[1]) > 1                     # a new pid in the container's pid namespace
    assert lines[2].strip() == "sleep 30"        # ... where pid 1 is the container's program
    assert lines[3].split()[-1] == "00000000a80425fb"
    assert lines[4:] == ["0", "1", "2", "3"]
    out = rt.runtime("exec", "-u", "65534:65534", cid, "id")
    assert out.stdout.strip() == "uid=65534(nobody) gid=65534(nogroup)"
    out = rt.runtime("exec", cid, "nosuch")
    assert out.returncode == 1 and "not found in $PATH" in out.stderr


def test_state_of_unknown_container(rt):
    out = rt.runtime("state", "nope")
    assert out.returncode == 1
    assert out.stderr.strip() == "nodeagent runtime state: container 'nope' does not exist"


def test_kill_all_reaches_every_process_of_the_container(rt):
    cid = rt.name()
    # The shell ignores TERM, so only a signal to *every* process ends the container.
    bundle = rt.bundle(["sh", "-c", "trap '' TERM; sleep 30 & sleep 30 & wait"])
    assert rt.runtime("run", "-d", "-b", str(bundle), cid).returncode == 0
    _wait_status(rt, cid, "running")
    record = json.loads((rt.root / cid / "state.json").read_text())
    procs = [d for d in record["cgroup"]["dirs"].values()]
    assert rt.runtime("kill", "--all", cid, "KILL").returncode == 0
    state = _wait_status(rt, cid, "stopped")
    assert state["exitCode"] == 137 and state["signal"] == 9
    assert all(Path(d, "cgroup.procs").read_text() == "" for d in procs)


def test_a_signal_during_run_never_strands_a_container(rt):
    """SIGTERM to `runtime run` at any moment: before the container exists the CLI just dies;
    from "created" on it is held and then passed to the container, whose status the CLI returns
    (143) and which `run` then deletes. Never a container left behind, created or running."""
    import signal
    import subprocess
    import sys

    from tests.busybox import REPO

    # As pid 1 of its namespace, the container's shell ignores a TERM it has no trap for yet; so
    # the test repeats the signal until the CLI ends.
    bundle = str(rt.bundle(["sh", "-c", "trap 'exit 143' TERM; while :; do sleep 0.05; done"]))
    outcomes = set()
    for delay in (0.0, 0.03, 0.06, 0.09, 0.12, 0.15, 0.2, 0.3, 0.5):
        cid = rt.name()
        cli = subprocess.Popen([sys.executable, "-m", "nodeagent", "runtime", "--root", str(rt.root),
                                "--storage", str(rt.storage), "run", "-b", bundle, cid], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        deadline = time.monotonic() + 20
        while cli.poll() is None and time.monotonic() < deadline:
            cli.send_signal(signal.SIGTERM)
            time.sleep(0.2)
        rc = cli.wait(5)
        outcomes.add(rc)
        assert rc in (-signal.SIGTERM, 128 + signal.SIGTERM), (delay, rc, cli.stderr.read())
        deadline = time.monotonic() + 5
        while (rt.root / cid).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not (rt.root / cid).exists(), (delay, rc, rt.runtime("state", cid).stdout)
    assert 128 + signal.SIGTERM in outcomes   # the later signals did reach a running container
