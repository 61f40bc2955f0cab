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


def connect(root: str) -> Channel | None:
    """A connection to the zygote serving state root `root`, or None if there is none. (A command
    worker asks its own zygote too: another warm worker then becomes the supervisor.)"""
    path = os.path.join(root, SOCKET_NAME)
    if not os.path.exists(path):
        return None
    try:
        return Channel.connect(path, timeout=2)
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


def stop(root: str, timeout: float = 10.0) -> int | None:
    """End the zygote serving state root `root` and remove its sockets and pid file; the pid it
    had, or None if none was running (stale files are removed all the same). Its workers, and the
    supervisors of the containers they made, are separate processes and are not touched.

    The pid file alone is not trusted — its pid may have been reused since: the process signalled
    is the one listening on zygote.sock (SO_PEERCRED of a connection to it names the process that
    called listen()), and only if the pid file names that same process."""
    import select
    import signal
    import socket
    import struct

    pid = None
    try:
        with open(os.path.join(root, PID_FILE)) as f:
            named = int(f.read().strip())
    except (OSError, ValueError):
        named = None
    conn = connect(root)
    if conn is not None:
        try:
            creds = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            listener = struct.unpack("3i", creds)[0]
        finally:
            conn.close()
        if listener == named:
            pid = named
    if pid is not None:
        try:
            pidfd = os.pidfd_open(pid)
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pidfd = None
        if pidfd is not None:
            try:   # readable once the process has exited: no polling loop, no sleep
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
