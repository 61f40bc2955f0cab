"""OCI hooks (runtime/process/hooks.py): every kind runs at its point of the lifecycle with the
state on stdin, and the spec's failure semantics — a failing create or start hook stops the
container, a failing poststart or poststop hook is a warning."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest


def _hook(cmd: str, timeout: int | None = None) -> dict:
    hook = {"path": "/bin/sh", "args": ["sh", "-c", cmd]}
    if timeout is not None:
        hook["timeout"] = timeout
    return hook


def _bundle(rt, hooks: dict, args=("true",), out: Path | None = None) -> Path:
    bundle = rt.bundle(list(args))
    path = bundle / "config.json"
    config = json.loads(path.read_text())
    config["hooks"] = hooks
    config["annotations"] = {"org.example/hooked": "yes"}
    if out is not None:  # startContainer runs inside the container: give it the log's directory
        config["mounts"].append({"destination": "/out", "type": "bind", "source": str(out),
                                 "options": ["rbind", "rw"]})
    path.write_text(json.dumps(config))
    return bundle


def _wait_stopped(rt, cid: str) -> None:
    deadline = time.monotonic() + 15
    while rt.state(cid)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.vm
def test_every_hook_runs_in_order_with_the_state_on_stdin(rt, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    log = out / "log"

    def record(name: str, where: str = str(log)) -> dict:
        return _hook(f'printf "%s %s %s\\n" {name} "$(readlink /proc/self/ns/pid)" "$(cat)" >> {where}')
    hooks = {"prestart": [record("prestart")], "createRuntime": [record("createRuntime")],
             "createContainer": [record("createContainer")],
             "startContainer": [record("startContainer", "/out/log")],   # a path in the container
             "poststart": [record("poststart")], "poststop": [record("poststop")]}
    bundle = _bundle(rt, hooks, out=out)
    cid = rt.name()
    assert rt.runtime("create", "-b", str(bundle), cid).returncode == 0
    pid = rt.state(cid)["pid"]
    assert [line.split()[0] for line in log.read_text().splitlines()] == \
        ["prestart", "createRuntime", "createContainer"]
    assert rt.runtime("start", cid).returncode == 0
    _wait_stopped(rt, cid)
    assert rt.runtime("delete", cid).returncode == 0
    seen = [line.split(" ", 2) for line in log.read_text().splitlines()]
    assert [name for name, _, _ in seen] == ["prestart", "createRuntime", "createContainer",
                                             "startContainer", "poststart", "poststop"]
    states = {name: json.loads(state) for name, _, state in seen}
    # The runtime's hooks run in our pid namespace, the container's in its own.
    ours = os.readlink("/proc/self/ns/pid")
    assert {name: ns == ours for name, ns, _ in seen} == {
        "prestart": True, "createRuntime": True, "createContainer": False,
        "startContainer": False, "poststart": True, "poststop": True}
    assert {n: s["status"] for n, s in states.items()} == {
        "prestart": "creating", "createRuntime": "creating", "createContainer": "creating",
        "startContainer": "created", "poststart": "running", "poststop": "stopped"}
    for name, state in states.items():
        assert state["id"] == cid and state["bundle"] == str(bundle)
        assert state["annotations"] == {"org.example/hooked": "yes"}
        if name != "poststop":
            assert state["pid"] == pid


def test_a_failing_prestart_hook_stops_the_create_and_leaves_nothing(rt, tmp_path):
    ran = tmp_path / "second-ran"
    bundle = _bundle(rt, {"prestart": [_hook("echo no network for you >&2; exit 3"),
                                       _hook(f"touch {ran}")],
                          "poststop": [_hook(f"touch {tmp_path / 'poststop-ran'}")]})
    cid = rt.name()
    out = rt.runtime("create", "-b", str(bundle), cid)
    assert out.returncode == 1
    assert out.stderr.strip().endswith(
        "hooks.prestart[0] (/bin/sh): exit status 3: no network for you")
    assert not ran.exists()                              # the first failure ends the create
    assert rt.runtime("list", "-q").stdout == ""
    assert not (rt.root / cid).exists()


def test_a_hook_that_outlives_its_timeout_is_killed_and_fails(rt):
    bundle = _bundle(rt, {"createRuntime": [_hook("sleep 30", timeout=1)]})
    started = time.monotonic()
    out = rt.runtime("create", "-b", str(bundle), rt.name())
    assert out.returncode == 1
    assert "hooks.createRuntime[0] (/bin/sh): timed out after 1 s (killed)" in out.stderr
    assert time.monotonic() - started < 25               # not the hook's 30 s


def test_a_failing_start_container_hook_fails_the_start_and_stops_the_container(rt):
    bundle = _bundle(rt, {"startContainer": [_hook("exit 7")]}, args=("sleep", "30"))
    cid = rt.name()
    assert rt.runtime("create", "-b", str(bundle), cid).returncode == 0
    out = rt.runtime("start", cid)
    assert out.returncode == 1
    assert "hooks.startContainer[0] (/bin/sh): exit status 7" in out.stderr
    _wait_stopped(rt, cid)
    assert rt.state(cid)["status"] == "stopped"


def test_failing_poststart_and_poststop_hooks_are_warnings(rt):
    bundle = _bundle(rt, {"poststart": [_hook("exit 4")], "poststop": [_hook("exit 5")]})
    cid = rt.name()
    assert rt.runtime("create", "-b", str(bundle), cid).returncode == 0
    out = rt.runtime("start", cid)
    assert out.returncode == 0
    assert out.stderr == "warning: hooks.poststart[0] (/bin/sh): exit status 4\n"
    _wait_stopped(rt, cid)
    out = rt.runtime("delete", cid)
    assert out.returncode == 0
    assert out.stderr == "warning: hooks.poststop[0] (/bin/sh): exit status 5\n"
    assert rt.runtime("state", cid).returncode == 1


def test_a_hook_with_a_relative_path_is_refused_by_name(rt):
    bundle = _bundle(rt, {"poststop": [{"path": "bin/true"}]})
    out = rt.runtime("create", "-b", str(bundle), rt.name())
    assert out.returncode == 1
    assert "hooks.poststop[0].path: must be an absolute path, not 'bin/true'" in out.stderr
