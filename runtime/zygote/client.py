"""The zygote's client side: find the zygote serving a state root and ask it to create a container.

All that a CLI or the agent needs to use a zygote (server.py is the zygote itself). It imports only
the channel, so that asking costs nothing a client has not loaded already.
"""

from __future__ import annotations

import os

from runtime.process.channel import Channel, ChannelClosed

SOCKET_NAME = "zygote.sock"
PID_FILE = "zygote.pid"


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


