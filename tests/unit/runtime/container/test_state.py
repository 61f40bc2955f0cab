"""How the OCI status is derived from the state directory (never stored, so never stale)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from runtime.container.state import StateDir, check_id, list_ids, process_start_time, write_atomic
from runtime.errors import ContainerNotFound, SpecError


def _dir(tmp_path, record: dict, **files) -> StateDir:
    d = StateDir(str(tmp_path), "c1")
    os.makedirs(d.path, exist_ok=True)
    write_atomic(d.file("state.json"), record)
    for name, content in files.items():
        write_atomic(d.file(f"{name}.json"), content)
    return d


def _alive_record() -> dict:
    me = os.getpid()
    return {"id": "c1", "status": "created", "pid": me, "pid_start": process_start_time(me),
            "shim_pid": me, "shim_start": process_start_time(me), "bundle": "/b", "rootfs": "/r"}


def test_created_running_stopped(tmp_path):
    d = _dir(tmp_path, _alive_record())
    assert d.load().status == "created"
    write_atomic(d.file("started.json"), {"startedAt": "2026-01-01T00:00:00Z"})
    state = d.load()
    assert state.status == "running" and state.started_at == "2026-01-01T00:00:00Z"
    assert state.to_oci()["pid"] == os.getpid()
    write_atomic(d.file("exit.json"), {"exitCode": 137, "signal": 9, "oomKilled": True,
                                       "reason": "OOMKilled", "finishedAt": "2026-01-01T00:00:01Z"})
    oci = d.load().to_oci()
    assert (oci["status"], oci["exitCode"], oci["oomKilled"], oci["reason"], oci["pid"]) == \
        ("stopped", 137, True, "OOMKilled", 0)


def test_a_reused_pid_is_not_mistaken_for_the_container(tmp_path):
    record = _alive_record() | {"pid_start": process_start_time(os.getpid()) - 1}
    state = _dir(tmp_path, record).load()
    assert state.status == "stopped"
    assert "supervisor died" in state.reason


def test_dead_processes_without_an_exit_record(tmp_path):
    proc = subprocess.Popen(["true"])
    proc.wait()
    record = _alive_record() | {"shim_pid": proc.pid}
    assert _dir(tmp_path, record).load().status == "stopped"


def test_creating_and_missing(tmp_path):
    assert _dir(tmp_path, {"id": "c1", "status": "creating"}).load().status == "creating"
    with pytest.raises(ContainerNotFound):
        StateDir(str(tmp_path), "nope").load()


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    write_atomic(str(tmp_path / "x.json"), {"a": 1})
    assert os.listdir(tmp_path) == ["x.json"]
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1}


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "-x", "x" * 129, "a b"])
def test_ids_that_could_escape_the_state_root_are_refused(bad):
    with pytest.raises(SpecError):
        check_id(bad)


def test_list_ids_ignores_stray_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    assert list_ids(str(tmp_path)) == ["a", "b"]
    assert list_ids(str(tmp_path / "missing")) == []
