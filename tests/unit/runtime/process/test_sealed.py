"""The sealed interpreter (runtime/process/sealed.py), without root: the memfd way.

Without the privilege to make a mount namespace (the unit tier runs as nobody where it can), the
read-only bind mount is refused and ensure_sealed falls back to a write-sealed memfd copy. Root
tests (tests/root/runtime/test_proc_self_exe.py) attack the sealed interpreter from a container.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runtime.process import sealed

REPO = Path(__file__).resolve().parents[4]


def _python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO), **env})


def test_an_ordinary_interpreter_is_not_sealed():
    if os.statvfs("/proc/self/exe").f_flag & os.ST_RDONLY:
        pytest.skip("this interpreter is on a read-only mount: sealed already, as far as a container can tell")
    assert not sealed.is_sealed()


def test_a_sealed_copy_cannot_be_written_or_resealed():
    fd = sealed.sealed_copy()
    try:
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
        assert seals & fcntl.F_SEAL_WRITE and seals & fcntl.F_SEAL_SEAL
        assert os.fstat(fd).st_size == os.stat("/proc/self/exe").st_size
        with pytest.raises(PermissionError):
            os.pwrite(fd, b"x", 0)
        with pytest.raises(PermissionError):
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def test_ensure_sealed_runs_the_same_command_again_from_a_sealed_interpreter():
    out = _python("""
        import json, os, sys
        from runtime.process import sealed
        print("before", sealed.is_sealed(), flush=True)
        sealed.ensure_sealed()
        print(json.dumps({"sealed": sealed.is_sealed(), "pid": os.getpid(), "prefix": sys.prefix,
                          "argv": sys.argv, "mark": "_NODEAGENT_SEALED_REEXEC" in os.environ}))
    """)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # The first run printed "before False" and was replaced; the second found itself sealed.
    assert lines[:2] == ["before False", "before True"]
    got = json.loads(lines[-1])
    assert got["sealed"] and not got["mark"]
    assert got["prefix"] == sys.prefix          # the same venv: Python found it from argv[0]
    assert got["argv"] == ["-c"]


def test_a_reexecution_that_is_still_not_sealed_is_an_error_not_a_loop():
    out = _python("""
        from runtime.process import sealed
        sealed.is_sealed = lambda: False
        try:
            sealed.ensure_sealed()
        except sealed.SealError as e:
            print("refused:", e)
    """, _NODEAGENT_SEALED_REEXEC="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("refused: re-executed from a sealed copy")
