"""Terminals: `run -t` (the container's own pty, through the supervisor) and `exec -t` (a pty made
inside the container, handed to the client), window size, stdin, exit status. The user's terminal
is played by util-linux `script`, which runs the CLI on a pty of its own."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys

import pytest

from tests.busybox import REPO


def _in_a_terminal(command: list[str], typed: str, rows=24, cols=80) -> subprocess.CompletedProcess:
    if shutil.which("script") is None:
        pytest.skip("util-linux script is not installed")
    line = f"stty rows {rows} cols {cols}; " + " ".join(shlex.quote(c) for c in command)
    # The keystrokes arrive a moment later, as a person's would, once the shell is up.
    feeder = f"sleep 1; printf {shlex.quote(typed)}"
    return subprocess.run(["sh", "-c", f"({feeder}) | script -qec {shlex.quote(line)} /dev/null"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)


def _cli(rt, *args):
    return [sys.executable, "-m", "nodeagent", *args[:1], "--root", str(rt.root), "--storage",
            str(rt.storage), *args[1:]]


def test_run_t_gives_the_container_its_own_terminal(rt):
    out = _in_a_terminal(_cli(rt, "run", "--rm", "-t", "-i", str(rt.rootfs), "sh"),
                         "tty; stty size; echo $((6*7)); ls -l /dev/console; exit 3\n", rows=33, cols=101)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "/dev/pts/0" in out.stdout           # pts 0 of the container's own devpts instance
    assert "33 101" in out.stdout               # the window size travelled
    assert "42" in out.stdout
    console = next(l for l in out.stdout.splitlines() if l.rstrip().endswith("/dev/console"))
    assert console.startswith("c") and "136,   0" in console   # the pty, bound over /dev/console


def test_exec_t_and_exec_with_stdin(rt):
    cid = rt.name()
    assert rt.run("-d", "--name", cid, str(rt.rootfs), "sleep", "30").returncode == 0
    out = _in_a_terminal(_cli(rt, "runtime", "exec", "-t", cid, "sh"), "tty; stty size; exit 5\n",
                         rows=20, cols=70)
    assert out.returncode == 5, out.stdout + out.stderr
    assert "/dev/pts/" in out.stdout and "20 70" in out.stdout
    piped = rt.runtime("exec", cid, "sh", "-c", "read x; echo got $x", input="hello\n")
    assert piped.stdout == "got hello\n"
