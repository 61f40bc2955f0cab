"""The `nodeagent` launcher: a Python -S script that asks a command server first and loads `site`
(the venv's packages) only when it runs the command itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from nodeagent import launcher

REPO = Path(__file__).resolve().parents[3]


def _write(tmp_path) -> Path:
    path = tmp_path / "nodeagent"
    launcher.write(str(path))
    return path


def test_the_launcher_is_an_executable_python_s_script_for_this_checkout(tmp_path):
    path = _write(tmp_path)
    assert os.access(path, os.X_OK)
    lines = path.read_text().splitlines()
    assert lines[0] == f"#!{sys.executable} -S"
    assert f"sys.path.append({str(REPO)!r})" in lines


def test_it_replaces_a_symlink_not_the_file_the_link_points_to(tmp_path):
    target = tmp_path / "console-script"
    target.write_text("#!/bin/sh\necho pip's\n")
    (tmp_path / "nodeagent").symlink_to(target)
    path = _write(tmp_path)
    assert not path.is_symlink()
    assert target.read_text() == "#!/bin/sh\necho pip's\n"


def _imported(stderr: str) -> set[str]:
    """The modules a run imported, from PYTHONPROFILEIMPORTTIME=1's report on stderr."""
    return {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines()
            if line.startswith("import time:")}


def test_without_a_server_commands_run_here_after_site(tmp_path):
    path = _write(tmp_path)
    out = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("usage: nodeagent"), out.stderr
    out = subprocess.run([str(path), "runtime", "--root", str(tmp_path / "state"), "list", "-q"],
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPROFILEIMPORTTIME="1"))
    assert (out.returncode, out.stdout) == (0, ""), out.stderr
    assert {"site", "nodeagent.cli", "argparse"} <= _imported(out.stderr)   # -S skipped it; now it ran


def test_a_served_command_never_loads_site(tmp_path, command_server):
    """The point of -S: the ~3 ms of `site` (and .pth files) are skipped when a server runs it."""
    path = _write(tmp_path)
    with command_server(lambda argv: 4) as argv:
        out = subprocess.run([str(path), *argv, "list"], capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, PYTHONPROFILEIMPORTTIME="1"))
    assert out.returncode == 4, out.stderr
    imported = _imported(out.stderr)
    assert "nodeagent.cmdclient" in imported
    assert not imported & {"site", "os", "argparse", "json", "socket", "nodeagent.cli"}, imported
