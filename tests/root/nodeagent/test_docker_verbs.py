"""`nodeagent run -d` and then docker's other verbs on what it started: ps, exec, stop, rm."""

from __future__ import annotations

import time

import pytest

from tests.busybox import make_rootfs, nodeagent


@pytest.fixture()
def env(tmp_path):
    rootfs = make_rootfs(tmp_path / "rootfs")
    root, storage = tmp_path / "state", tmp_path / "storage"
    names: list[str] = []

    def na(*args: str, **kw):
        hidden = ["--root", str(root)]
        if args[0] == "run":
            hidden += ["--storage", str(storage)]
        return nodeagent(args[0], *hidden, *args[1:], **kw)

    yield na, str(rootfs), names
    for name in names:
        na("rm", "-f", name)


def test_run_detached_then_ps_exec_stop_rm(env):
    na, rootfs, names = env
    names += ["web", "trapper"]
    out = na("run", "-d", "--name", "web", rootfs, "sleep", "3600")
    assert (out.returncode, out.stdout) == (0, "web\n"), out.stderr
    out = na("run", "-d", "--name", "trapper", rootfs, "sh", "-c",
             "trap 'exit 42' TERM; while true; do sleep 0.1; done")
    assert out.returncode == 0, out.stderr
    ps = na("ps")
    assert ps.stdout.splitlines()[0].split() == ["NAME", "COMMAND", "CREATED", "STATUS"]
    assert {line.split()[0] for line in ps.stdout.splitlines()[1:]} == {"web", "trapper"}
    assert "Up " in ps.stdout
    out = na("exec", "web", "sh", "-c", "echo $((6*7)); exit 3")
    assert (out.returncode, out.stdout) == (3, "42\n")
    out = na("rm", "web")                                   # running: refused, one line
    assert out.returncode == 1 and "stop it first" in out.stderr
    t = time.monotonic()
    out = na("stop", "-t", "30", "trapper")                 # the trap ends it at once
    assert (out.returncode, out.stdout) == (0, "trapper\n"), out.stderr
    assert time.monotonic() - t < 20
    out = na("stop", "-t", "1", "web")                      # sleep as pid 1 ignores TERM: SIGKILL
    assert out.returncode == 0, out.stderr
    ps = na("ps", "-a").stdout
    assert "Exited (42)" in ps and "Exited (137)" in ps
    assert na("ps", "-q").stdout == ""
    out = na("rm", "web", "trapper", "nosuch")
    assert out.returncode == 1 and out.stdout.split() == ["web", "trapper"]
    assert "nosuch" in out.stderr
    assert na("ps", "-a", "-q").stdout == ""
    names.clear()
