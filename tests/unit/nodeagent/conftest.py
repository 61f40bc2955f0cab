"""`command_server`: a stand-in zygote for the command-server tests, without root or the runtime.

It serves one connection on <tmp_path>/command.sock the way zygote.py does — cmdserver.receive,
then cmdserver.work in a forked process — but runs a Python function as "the command" instead of
the CLI, so a test states exactly what the command does and sees what the client makes of it.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

from runtime.process import cmdserver, cmdwire
from runtime.process.channel import listen


@contextmanager
def _serving(root: Path, command=None, refuse: str | None = None):
    """Yields the argv prefix that reaches this server (`runtime --root ROOT`). The forked server
    runs `command(argv)` for the first client — or refuses it with `refuse` — then exits."""
    listener = listen(str(root / cmdwire.SOCKET_NAME))
    pid = os.fork()
    if pid == 0:
        try:
            listener.settimeout(10)   # a test that never connects must not hang its server
            conn, _ = listener.accept()
            listener.close()
            try:
                request = cmdserver.receive(conn)
            except cmdserver.Refused as e:
                cmdserver.refuse(conn, str(e))
            else:
                if refuse is not None:
                    request.close()
                    cmdserver.refuse(conn, refuse)
                else:
                    cmdserver.work(conn, request, command)
        finally:
            os._exit(0)
    listener.close()
    try:
        yield ["runtime", "--root", str(root)]
    finally:
        os.waitpid(pid, 0)   # the server we forked


@pytest.fixture
def command_server(tmp_path):
    """command_server(command=None, refuse=None): a context manager, see _serving."""
    return lambda command=None, refuse=None: _serving(tmp_path, command, refuse)
