"""The command server's side: check a client, take its request, and become it in a forked worker.

A spare worker of the zygote (zygote.py, spares.py) accepts a connection on <root>/command.sock,
calls `receive`, then `work`, and exits. The request format is in cmdwire.py.

A worker must look, to the command it runs, like the process the user would have started:

    the client's stdin/stdout/stderr     dup2'd onto fds 0, 1, 2, and fresh sys.std* objects over
                                         them (the zygote's were made for /dev/null: a terminal
                                         must get line buffering, for one)
    its working directory                fchdir to the O_PATH fd it sent (relative paths, `-b .`)
    its umask                            files the command creates get the client's permissions
    its environment                      os.environ replaced (and putenv'd, for child processes)
    its argv                             sys.argv, and the command's arguments

What a worker does not take over (chg has the same limits): the client's cgroup, session,
process group, rlimits and capabilities stay the zygote's. So a container created by a worker
goes below the zygote's own cgroup, as one created through zygote.sock always has; and a client
with fewer capabilities than the zygote gets the zygote's, which zygote.sock gives it too.

Only a client with our own uid is served. The socket is root-only anyway (channel.listen binds it
with umask 077), but a command runs with all of the zygote's privileges, so the worker checks the
peer's credentials (SO_PEERCRED, filled in by the kernel at connect) rather than trust file modes.
(`receive` does, in the worker, before anything of the request is used.)
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass

from runtime.zygote import cmdwire

# Signals a client forwards; a worker blocks them once its command has returned, so that a late one
# cannot interrupt the reply that carries the exit status.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGWINCH)
RECEIVE_TIMEOUT = 5.0  # a client sends its request right after connecting; a silent one frees the worker


class Refused(Exception):
    """This connection will not be served (the reason goes back to the client, which runs the
    command itself)."""


@dataclass(frozen=True)
class Request:
    """A command to run. The fds are the worker's to use and everyone's to close (`close`)."""
    umask: int
    argv: list[bytes]
    env: list[tuple[bytes, bytes]]
    fds: tuple[int, int, int, int]  # stdin, stdout, stderr, cwd (cmdwire.FDS)

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)


def receive(conn: socket.socket) -> Request:
    """The request of a freshly accepted connection; Refused if the peer is not us or the request
    is malformed (the caller sends the reason with `refuse`)."""
    _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                          struct.calcsize("3i")))
    if uid != os.geteuid():
        raise Refused(f"uid {uid} may not run commands as uid {os.geteuid()}")
    conn.settimeout(RECEIVE_TIMEOUT)
    try:
        # MSG_CMSG_CLOEXEC: the fds must not leak into processes the zygote forks meanwhile.
        data, fds, flags, _ = socket.recv_fds(conn, cmdwire.MAX_REQUEST, len(cmdwire.FDS) + 1,
                                              socket.MSG_CMSG_CLOEXEC)
    except OSError as e:  # including the timeout
        raise Refused(f"no request: {e}") from None
    finally:
        conn.settimeout(None)
    try:
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            raise Refused("request too long")
        if len(fds) != len(cmdwire.FDS):
            raise Refused(f"expected {len(cmdwire.FDS)} fds ({', '.join(cmdwire.FDS)}), got {len(fds)}")
        umask, argv, env = cmdwire.decode_request(data)
    except (Refused, cmdwire.BadRequest) as e:
        for fd in fds:
            os.close(fd)
        raise Refused(str(e)) from None
    return Request(umask, argv, env, tuple(fds))


def refuse(conn: socket.socket, reason: str) -> None:
    """Tell the client nothing was run (it may then run the command itself)."""
    try:
        conn.send(cmdwire.encode_reply("refused", reason))
    except OSError:
        pass  # the client is gone: nobody to tell


def work(conn: socket.socket, request: Request, command: Callable[[list[str]], int]) -> None:
    """In a freshly forked worker: become the client, run `command(argv[1:])`, report the exit
    status. Returns when done; the caller then _exits (never back into the zygote's loop)."""
    try:
        _become_client(request)
    except Exception as e:  # noqa: BLE001 - e.g. the client's cwd is gone; nothing has run yet
        refuse(conn, f"the worker could not take over the client's process state: {e}")
        return
    prog = os.path.basename(sys.argv[0]) if sys.argv else "command"
    code = 1
    try:
        # "pid" goes first so that the client can forward signals; a ^C that arrives from here on
        # is a KeyboardInterrupt in the command, exactly as in a process of its own.
        conn.send(cmdwire.encode_reply("pid", os.getpid()))
        code = _exit_status(command(sys.argv[1:]))
    except SystemExit as e:  # argparse's usage errors and --help, sys.exit in the command
        if e.code is None or isinstance(e.code, int):
            code = _exit_status(e.code)
        else:
            print(e.code, file=sys.stderr)  # sys.exit("message"): Python prints it and exits 1
    except KeyboardInterrupt:
        code = 130  # 128 + SIGINT, what a shell reports for a ^C'd program
    except BaseException as e:  # noqa: BLE001 - a bug in a command must still answer the client
        print(f"{prog}: {type(e).__name__}: {e}", file=sys.stderr)
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed pipe or file: the output has nowhere to go
    try:
        conn.send(cmdwire.encode_reply("exit", code))
    except OSError:
        pass  # the client is gone


def _become_client(request: Request) -> None:
    stdin, stdout, stderr, cwd = request.fds
    for target, fd in enumerate((stdin, stdout, stderr)):
        os.dup2(fd, target)  # inheritable: programs the command starts share the client's stdio
    os.fchdir(cwd)
    request.close()
    os.umask(request.umask)
    _replace_environment(dict(request.env))
    sys.argv = [os.fsdecode(word) for word in request.argv]
    _fresh_stdio()


def _replace_environment(wanted: dict[bytes, bytes]) -> None:
    """os.environ becomes the client's; os.environ's setters putenv() and unsetenv() as well, so
    that programs the command starts inherit it. Only the differences are applied: the client's
    environment is usually the zygote's, and re-setting every variable costs ~0.5 ms here."""
    env = os.environb
    for key in [key for key in env if key not in wanted]:
        del env[key]
    for key, value in wanted.items():
        if env.get(key) != value:
            env[key] = value


def _fresh_stdio() -> None:
    """sys.stdin/stdout/stderr over the new fds 0-2, buffered as Python would have for them:
    stdout line-buffered on a terminal (block-buffered otherwise), stderr always line-buffered."""
    for name, fd, mode in (("stdin", 0, "r"), ("stdout", 1, "w"), ("stderr", 2, "w")):
        old = getattr(sys, name)
        encoding = getattr(old, "encoding", None) or "utf-8"
        errors = getattr(old, "errors", None) or ("backslashreplace" if name == "stderr" else "strict")
        line_buffered = name == "stderr" or (name == "stdout" and os.isatty(fd))
        setattr(sys, name, open(fd, mode, buffering=1 if line_buffered else -1, encoding=encoding,
                                errors=errors, closefd=False))


def _exit_status(code: object) -> int:
    """What the process's exit status would have been: None is 0, ints as the kernel keeps them."""
    if code is None:
        return 0
    return int(code) & 0xFF
