"""start: let a created container's init execve the program; wait: block until a container exits.

Both go through the supervisor's socket. `start` returns when the program is running (the init's
close-on-exec channel closed) or with the reason execve failed; `wait` returns the exit record —
at once if the container has already stopped, from exit.json, even if the supervisor is gone.
"""

from __future__ import annotations

from runtime.container.state import StateDir
from runtime.errors import ContainerError, InvalidState, StepError
from runtime.process.channel import Channel, ChannelClosed


def _connect(d: StateDir) -> Channel:
    try:
        return Channel.connect(d.socket, timeout=5)
    except OSError as e:
        raise ContainerError(f"container {d.id!r}: cannot reach its supervisor at {d.socket}: "
                             f"{e.strerror or e}") from e


def start(root: str, cid: str) -> str:
    """Start container `cid`; returns its start time (RFC 3339)."""
    d = StateDir(root, cid)
    state = d.load()
    if state.status != "created":
        raise InvalidState(cid, state.status, "only a created container can be started")
    ch = _connect(d)
    try:
        ch.send({"op": "start"})
        reply, _ = ch.recv()
    except ChannelClosed:
        raise ContainerError(f"container {cid!r}: the supervisor closed the connection") from None
    finally:
        ch.close()
    if "error" in reply:
        raise StepError("start", reply["error"])
    import sys
    for warning in reply.get("warnings", ()):
        print(f"warning: {warning}", file=sys.stderr)
    return reply["startedAt"]


def wait(root: str, cid: str) -> dict:
    """The exit record of container `cid` once it has stopped (exitCode, reason, finishedAt...)."""
    d = StateDir(root, cid)
    state = d.load()
    if state.status in ("created", "running"):
        try:
            ch = _connect(d)
        except ContainerError:
            ch = None  # it may have just exited and removed its socket: read the record below
        if ch is not None:
            try:
                ch.send({"op": "wait"})
                reply, _ = ch.recv()
                return reply["exited"]
            except (ChannelClosed, OSError):
                pass
            finally:
                ch.close()
        state = d.load()
    if state.status != "stopped":
        raise InvalidState(cid, state.status, "it cannot be waited for")
    return state.to_oci()
