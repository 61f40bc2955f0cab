"""Which zygote serves a state root (runtime/zygote/client.py): the pid file and the process's
start time decide, never whether it answers — a busy zygote may not, for seconds."""

from __future__ import annotations

import os
import select
import subprocess
import sys

from runtime.statefiles import process_start_time
from runtime.zygote import client


def write_pid_file(root, text: str) -> None:
    (root / client.PID_FILE).write_text(text)


def test_a_live_process_with_the_recorded_start_time_is_the_zygote(tmp_path):
    write_pid_file(tmp_path, client.pid_file_text(os.getpid(), process_start_time(os.getpid())))
    assert client.running(str(tmp_path)) == os.getpid()


def test_no_socket_is_needed_to_be_alive(tmp_path):
    # the case that started a second zygote: nothing answered on zygote.sock (here: no socket at
    # all), yet the process the pid file names lives
    write_pid_file(tmp_path, client.pid_file_text(os.getpid(), process_start_time(os.getpid())))
    assert not (tmp_path / client.SOCKET_NAME).exists()
    assert client.running(str(tmp_path)) == os.getpid()


def test_a_reused_pid_is_not_the_zygote(tmp_path):
    write_pid_file(tmp_path, client.pid_file_text(os.getpid(), process_start_time(os.getpid()) - 1))
    assert client.running(str(tmp_path)) is None


def test_no_pid_file_or_a_garbled_one_is_no_zygote(tmp_path):
    assert client.running(str(tmp_path)) is None
    write_pid_file(tmp_path, "not a pid\n")
    assert client.running(str(tmp_path)) is None


def test_a_pid_only_file_of_an_older_zygote_is_believed_only_if_that_pid_listens(tmp_path):
    write_pid_file(tmp_path, f"{os.getpid()}")           # nobody listens on zygote.sock
    assert client.running(str(tmp_path)) is None


def test_stop_ends_the_named_process_and_removes_the_files_even_if_it_never_answers(tmp_path):
    # a stand-in zygote that never accepts a connection: stop must not depend on one
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pidfd = os.pidfd_open(child.pid)
        write_pid_file(tmp_path, client.pid_file_text(child.pid, process_start_time(child.pid)))
        (tmp_path / client.SOCKET_NAME).write_text("")   # a stale socket path
        assert client.stop(str(tmp_path)) == child.pid
        assert select.select([pidfd], [], [], 10)[0]
        assert os.listdir(tmp_path) == []
        os.close(pidfd)
    finally:
        child.kill()
        child.wait()
