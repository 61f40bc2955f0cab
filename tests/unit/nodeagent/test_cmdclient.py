"""The command server's client and a worker, without root: a forked test server (conftest.py)
runs a Python function as "the command" for the real client (nodeagent/cmdclient.py) over a real socket.

What a user sees: the command's output on their own stdout/stderr, its exit status as the
client's, their argv, environment, working directory and umask in the command, their signals in
it — and no server (or a dead one) simply means the command runs in the client's own process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nodeagent import cmdclient
from runtime.process import cmdwire

REPO = Path(__file__).resolve().parents[3]


# --- which commands go to which server ----------------------------------------------------------------
@pytest.mark.parametrize("argv, root", [
    (["runtime", "list"], "/run/nodeagent/runtime"),
    (["runtime", "--root", "/r", "run", "-b", ".", "c"], "/r"),
    (["runtime", "--root=/r", "state", "c"], "/r"),
    (["runtime", "--storage", "/s", "--root", "/r", "list"], "/r"),   # --storage's value is no verb
    (["runtime", "--storage=/s", "list"], "/run/nodeagent/runtime"),
    (["runtime", "run", "--root", "/elsewhere", "c"], "/run/nodeagent/runtime"),  # the verb's args
    (["runtime", "zygote", "-d"], None),    # never from inside a server's worker
    (["runtime"], None),                    # no verb: argparse explains, here
    (["runtime", "--root"], None),
    (["runtime", "--help"], None),
    (["run", "--rm", "busybox"], None),     # only `runtime` commands are served
    (["doctor"], None),
    ([], None),
])
def test_the_state_root_picks_the_server(argv, root):
    assert cmdclient.runtime_root(argv) == root


# --- no server ----------------------------------------------------------------------------------------
def test_without_a_socket_the_caller_runs_the_command(tmp_path):
    assert cmdclient.try_command_server(["runtime", "--root", str(tmp_path), "list"]) is None


def test_a_stale_socket_is_no_server(tmp_path):
    """A zygote that was killed leaves its socket file behind: connect() is refused."""
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    dead.bind(str(tmp_path / cmdwire.SOCKET_NAME))
    dead.close()
    assert cmdclient.try_command_server(["runtime", "--root", str(tmp_path), "list"]) is None


def test_the_command_runs_as_the_client_with_its_output_and_exit_status(command_server, tmp_path, capfd,
                                                                       monkeypatch):
    def command(argv):
        print("argv", argv)
        print("cwd", os.getcwd())
        print("umask", oct(os.umask(0)))
        print("env", os.environ.get("CMDTEST"), "GONE" in os.environ)
        sys.stdout.flush()
        os.system("echo child sees $CMDTEST")   # the environment was putenv'd, not just copied
        print("to stderr", file=sys.stderr)
        return 7

    workdir = tmp_path / "here"
    workdir.mkdir()
    monkeypatch.setenv("GONE", "only the server's")
    old = os.umask(0o022)
    try:
        with command_server(command) as argv:
            # Only now, after the server forked, the client's own state becomes different.
            monkeypatch.chdir(workdir)
            monkeypatch.setenv("CMDTEST", "from the client")
            monkeypatch.delenv("GONE")
            os.umask(0o027)
            code = cmdclient.try_command_server(argv + ["list", "caf\udce9"])  # b"caf\xe9"
    finally:
        os.umask(old)
    out, err = capfd.readouterr()
    assert code == 7
    assert out.splitlines() == [
        f"argv {['runtime', '--root', str(tmp_path), 'list', 'caf' + chr(0xdce9)]}",
        f"cwd {workdir}", "umask 0o27", "env from the client False", "child sees from the client"]
    assert err == "to stderr\n"


@pytest.mark.parametrize("raise_, code, stderr", [
    (SystemExit(2), 2, ""),                           # argparse's usage errors
    (SystemExit(None), 0, ""),                        # --help
    (SystemExit("bye"), 1, "bye\n"),                  # as Python itself reports sys.exit("bye")
    (KeyboardInterrupt(), 130, ""),
    (RuntimeError("boom"), 1, "pytest: RuntimeError: boom\n"),  # one line, never a traceback
])
def test_how_a_command_ends_becomes_the_exit_status(command_server, capfd, raise_, code, stderr):
    def command(argv):
        raise raise_

    with command_server(command) as argv:
        assert cmdclient.try_command_server(argv + ["list"]) == code
    assert capfd.readouterr().err.replace(os.path.basename(sys.argv[0]), "pytest") == stderr


def test_a_worker_that_dies_mid_command_is_reported_not_run_again(command_server, capfd):
    with command_server(lambda argv: os._exit(0)) as argv:
        assert cmdclient.try_command_server(argv + ["run", "-b", ".", "c"]) == 1
    assert "exited without an exit status" in capfd.readouterr().err


def test_a_refusal_means_nothing_ran_and_the_caller_runs_it(command_server):
    with command_server(refuse="not today") as argv:
        assert cmdclient.try_command_server(argv + ["list"]) is None


def test_the_server_refuses_a_malformed_request(command_server, tmp_path):
    with command_server(lambda argv: 0):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.connect(str(tmp_path / cmdwire.SOCKET_NAME))
        socket.send_fds(sock, [b"hello\0"], [0, 1, 2, 0])
        assert sock.recv(256).startswith(b"refused expected command-v1")
        sock.close()


# --- the client as a program of its own -----------------------------------------------------------------
CLIENT = f"""
import sys
sys.path.append({str(REPO)!r})
from nodeagent import cmdclient
sys.exit(cmdclient.try_command_server(sys.argv[1:]))
"""


def test_signals_sent_to_the_client_reach_the_command(command_server):
    def command(argv):
        signal.signal(signal.SIGUSR1, lambda *_: sys.exit(44))
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(43))
        print("ready", flush=True)
        # Not signal.pause(): a signal that lands between the last check for pending handlers and
        # the pause() call runs its handler only after a *second* signal, so the test hung when
        # the client's SIGTERM came that early (seen on a loaded machine). A sleep returns on its
        # own, and the handler runs at the latest then.
        while True:
            time.sleep(0.05)

    with command_server(command) as argv:
        client = subprocess.Popen([sys.executable, "-S", "-c", CLIENT, *argv, "run"],
                                  stdout=subprocess.PIPE, text=True)
        assert client.stdout.readline() == "ready\n"
        client.send_signal(signal.SIGTERM)
        assert client.wait(timeout=10) == 43
        client.stdout.close()


def test_the_client_loads_no_module_beyond_builtins():
    """Each module costs milliseconds per CLI call here: the client needs `_socket`, `_signal`,
    `posix` and the wire format only (no os, socket, json, argparse, enum, re, ...)."""
    code = ("import sys; sys.path.append(%r); before = set(sys.modules); "
            "from nodeagent import cmdclient; print(' '.join(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-S", "-c", code % str(REPO)], capture_output=True,
                         text=True, check=True).stdout.split()
    assert set(out) <= {"nodeagent", "nodeagent.cmdclient", "runtime", "runtime.zygote",
                        "runtime.zygote.cmdwire", "_socket"}, out
