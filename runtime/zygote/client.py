"""The zygote's client side: find the zygote serving a state root and ask it to create a container.

All that a CLI or the agent needs to use a zygote (server.py is the zygote itself). It imports only
the channel, so that asking costs nothing a client has not loaded already.
"""

from __future__ import annotations

import os

from runtime.process.channel import Channel, ChannelClosed

SOCKET_NAME = "zygote.sock"
PID_FILE = "zygote.pid"
COMMAND_SOCKET_NAME = "command.sock"   # = cmdwire.SOCKET_NAME (served when the zygote runs commands)


def connect(root: str, timeout: float = 2.0) -> Channel | None:
    """A connection to the zygote serving state root `root`, or None if there is none — or if it
    did not accept within `timeout` seconds (busy: use `running` to tell the two apart). (A
    command worker asks its own zygote too: another warm worker then becomes the supervisor.)"""
    path = os.path.join(root, SOCKET_NAME)
    if not os.path.exists(path):
        return None
    try:
        return Channel.connect(path, timeout=timeout)
    except OSError:
        return None  # a stale socket: the zygote is gone


def request_create(zygote: Channel, request: dict, fds: list[int]) -> tuple[dict, Channel]:
    """Ask the zygote to create a container. Returns (the state record, the supervisor channel);
    a failure comes back as a dict with "error" and is raised by the caller's error mapping."""
    zygote.send(request, fds)
    try:
        reply, got = zygote.recv()
    except ChannelClosed:
        reply, got = {"error": "the zygote's worker exited without an answer", "type": "ContainerError"}, []
    if "error" in reply:
        zygote.close()
        for fd in got:
            os.close(fd)
        raise _error_from(reply)
    # The worker that answered has become the container's supervisor: this connection is now
    # our channel to it, as if we had created the container ourselves.
    return reply["created"], zygote


def _error_from(reply: dict) -> Exception:
    from runtime import errors

    if reply.get("type") == "StepError" or ("step" in reply and "type" not in reply):
        return errors.StepError(reply.get("step") or "create", reply.get("reason") or reply["error"])
    if reply.get("type") == "ContainerExists":
        return errors.ContainerExists(reply.get("id", "?"))
    return errors.ContainerError(reply["error"])


def pid_file_text(pid: int, start: int) -> str:
    """What a zygote writes to <root>/zygote.pid: "<pid> <start time>" (statefiles: clock ticks
    since boot). The start time tells the zygote from a process that has reused its pid since."""
    return f"{pid} {start}\n"


def _named(root: str) -> tuple[int, int | None] | None:
    """(pid, start time) from the pid file; start time None in a file an older zygote wrote (its
    pid only); None if there is no readable pid file."""
    try:
        with open(os.path.join(root, PID_FILE)) as f:
            words = f.read().split()
        return int(words[0]), (int(words[1]) if len(words) > 1 else None)
    except (OSError, ValueError, IndexError):
        return None


def running(root: str) -> int | None:
    """The pid of the zygote serving `root`, if it is alive — decided by its pid file and the
    process's start time, never by whether it answers: a zygote busy forking under load can leave
    a connect() waiting for seconds (its listen backlog full), and taking that for death started a
    second zygote over the first one's socket, leaving the first running for nobody (nor for
    `nodeagent down`, which found only the second).

    A pid file without a start time (written by an older zygote) is believed only if that pid is
    the process listening on zygote.sock (SO_PEERCRED of a connection to it names the process that
    called listen())."""
    from runtime.statefiles import process_start_time

    named = _named(root)
    if named is None:
        return None
    pid, start = named
    if start is not None:
        return pid if process_start_time(pid) == start else None
    return pid if _listener(root) == pid else None


def _listener(root: str) -> int | None:
    import socket
    import struct

    conn = connect(root)
    if conn is None:
        return None
    try:
        creds = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return struct.unpack("3i", creds)[0]
    finally:
        conn.close()


def stop(root: str, timeout: float = 10.0) -> int | None:
    """End the zygote serving state root `root` and remove its sockets and pid file; the pid it
    had, or None if none was running (stale files are removed all the same). Its workers, and the
    supervisors of the containers they made, are separate processes and are not touched.

    The process signalled is the one the pid file names, if it still has the start time recorded
    there (`running`) — checked again once a pidfd of it is open, and signalled through that
    pidfd, so it cannot be another process that took the pid meanwhile. No connection is made:
    a busy zygote (its backlog full) is stopped all the same."""
    import select
    import signal

    from runtime.statefiles import process_start_time

    pid = running(root)
    if pid is not None:
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            pidfd = None
        named = _named(root)
        if pidfd is not None and named is not None and named[1] is not None and \
                process_start_time(pid) != named[1]:
            os.close(pidfd)     # it exited between running() and pidfd_open, and the pid was reused
            pidfd = None
        if pidfd is not None:
            try:   # readable once the process has exited: no polling loop, no sleep
                try:
                    signal.pidfd_send_signal(pidfd, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                if not select.select([pidfd], [], [], timeout)[0]:
                    raise OSError(f"the zygote (pid {pid}) did not exit within {timeout:.0f} s of SIGTERM")
            finally:
                os.close(pidfd)
    for name in (SOCKET_NAME, COMMAND_SOCKET_NAME, PID_FILE):
        try:
            os.unlink(os.path.join(root, name))
        except FileNotFoundError:
            pass
    return pid
