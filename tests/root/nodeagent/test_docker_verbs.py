"""`nodeagent run -d` and then docker's other verbs on what it started: ps, logs, exec, stop, rm."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.busybox import REPO, make_rootfs, nodeagent


@pytest.fixture()
def env(tmp_path):
    rootfs = make_rootfs(tmp_path / "rootfs")
    root, storage = tmp_path / "state", tmp_path / "storage"
    names: list[str] = []

    def na(*args: str, popen: bool = False, **kw):
        hidden = ["--root", str(root)]
        if args[0] == "run":
            hidden += ["--storage", str(storage)]
        if popen:   # a command that keeps running (logs -f): the caller reads and waits
            return subprocess.Popen([sys.executable, "-m", "nodeagent", args[0], *hidden, *args[1:]],
                                    cwd=REPO, text=True, **kw)
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


def test_logs_prints_each_stream_to_its_own_and_follow_ends_with_the_container(env):
    na, rootfs, names = env
    names.append("talker")
    out = na("run", "-d", "--name", "talker", rootfs, "sh", "-c",
             "echo one; echo oops >&2; read line; echo $line; echo three")
    assert out.returncode == 0, out.stderr
    # Follow from the start, while the container waits on its stdin... it has none (run -d), so
    # `read` sees EOF at once: the whole output is known, and -f must end when the container does.
    out = na("logs", "-f", "talker", timeout=30)
    assert (out.returncode, out.stdout, out.stderr) == (0, "one\n\nthree\n", "oops\n")
    out = na("logs", "-n", "1", "talker")            # the last record only (of either stream:
    assert (out.stdout + out.stderr) in ("three\n", "oops\n")   # the two pipes are read apart)
    stamped = na("logs", "-t", "talker").stdout.splitlines()     # stdout's records, each stamped
    assert [line.split(" ", 1)[1] for line in stamped] == ["one", "", "three"]
    assert all(line[:4].isdigit() and "T" in line.split(" ")[0] for line in stamped)
    out = na("logs", "nosuch")
    assert out.returncode == 1 and out.stderr == "nodeagent logs: container 'nosuch' does not exist\n"


def test_logs_follow_prints_lines_as_they_are_written(env):
    """A running container: `logs -f` shows what it has written so far and then what it writes
    next, and returns once the container stops."""
    na, rootfs, names = env
    names.append("ticker")
    assert na("run", "-d", "--name", "ticker", rootfs, "sh", "-c",
              "echo first; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo second").returncode == 0
    follower = na("logs", "-f", "ticker", popen=True, stdout=subprocess.PIPE)
    try:
        assert follower.stdout.readline() == "first\n"
        assert follower.poll() is None                       # still following
        assert na("exec", "ticker", "touch", "/tmp/go").returncode == 0
        assert follower.stdout.readline() == "second\n"
        assert follower.wait(timeout=30) == 0                 # the container ended: so does -f
    finally:
        if follower.poll() is None:
            follower.kill()
        follower.stdout.close()
