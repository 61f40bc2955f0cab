"""Why a program cannot run, before execve says only ENOENT."""

from __future__ import annotations

import os
import shutil

import pytest

from runtime.errors import StepError
from runtime.process.executable import check_interpreter, find_executable


def _script(path, content: bytes):
    path.write_bytes(content)
    path.chmod(0o755)
    return str(path)


def test_path_search_finds_the_first_executable(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _script(tmp_path / "b/tool", b"#!/bin/sh\n")
    (tmp_path / "a/tool").write_text("not executable")
    assert find_executable("tool", f"{tmp_path}/a:{tmp_path}/b", "/") == f"{tmp_path}/b/tool"


def test_not_found_names_the_path_searched(tmp_path):
    with pytest.raises(StepError) as e:
        find_executable("nosuch", str(tmp_path), "/")
    assert e.value.step == "find the executable"
    assert f"not found in $PATH ({tmp_path})" in e.value.reason


def test_relative_names_resolve_against_the_working_directory(tmp_path):
    _script(tmp_path / "run", b"#!/bin/sh\n")
    assert find_executable("./run", None, str(tmp_path)) == f"{tmp_path}/./run"
    with pytest.raises(StepError, match="no such file"):
        find_executable("./gone", None, str(tmp_path))


def test_crlf_shebang_is_explained(tmp_path):
    with pytest.raises(StepError) as e:
        check_interpreter(_script(tmp_path / "s.sh", b"#!/bin/sh\r\necho hi\r\n"))
    assert "carriage return" in e.value.reason and "CRLF" in e.value.reason


def test_missing_interpreter_is_named(tmp_path):
    with pytest.raises(StepError, match="is a script for /no/such/python"):
        check_interpreter(_script(tmp_path / "p", b"#!/no/such/python -u\nprint(1)\n"))
    check_interpreter(_script(tmp_path / "ok", b"#!/bin/sh\n"))      # present: no error


def test_missing_elf_loader_is_named(tmp_path):
    real = shutil.which("ls")
    check_interpreter(os.path.realpath(real))                        # a dynamic binary, loader present
    data = bytearray(open(os.path.realpath(real), "rb").read())
    i = data.find(b"/lib64/ld-linux-x86-64.so.2")
    if i < 0:
        pytest.skip("not an x86_64 glibc binary")
    data[i:i + 27] = b"/lib64/ld-nowhere-x86-64.so"
    path = tmp_path / "prog"
    path.write_bytes(bytes(data))
    path.chmod(0o755)
    with pytest.raises(StepError, match="dynamically linked, but its loader /lib64/ld-nowhere"):
        check_interpreter(str(path))
