"""run: create, start and (unless detached) wait — `runc run` and `docker run` in one function.

In the foreground the caller stays connected to the supervisor through the channel `create`
returned: it asks it to start the container and then blocks until the supervisor reports the exit.
Signals the caller receives (^C, SIGTERM, ...) are passed on to the container's init, as runc
does. If the caller is killed instead, nothing happens to the container: the supervisor carries on,
records the exit, and `state` reports it later — the crash-proof property ARCHITECTURE.md asks for.
"""

from __future__ import annotations

import os
import signal

from runtime.container.create import CreateOptions, create
from runtime.errors import ContainerError, StepError
from runtime.process.channel import ChannelClosed
from runtime.spec.model import ContainerSpec

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def run(cid: str, spec: ContainerSpec, opts: CreateOptions = CreateOptions(), *,
        detach: bool = False, remove: bool = False, on_created=None) -> int:
    """Exit code of the container (foreground), or 0 once it is running (detach).
    `on_created(state)` is called between create and start (e.g. to write a pid file)."""
    created = create(cid, spec, opts)
    ch = created.channel
    attach = None
    try:
        if on_created is not None:
            on_created(created.state)
        if created.state.record.get("stdio") == "tty" and not detach:
            attach = _attach(opts.root, cid)
        ch.send({"op": "start"})
        reply, _ = ch.recv()
        if "error" in reply:
            raise StepError("start", reply["error"])
        if detach:
            return 0
        pid = created.state.pid
        previous = {sig: signal.signal(sig, lambda s, _f: _forward(pid, s)) for sig in FORWARDED}
        try:
            if attach is not None:
                from runtime.process.terminal import proxy
                proxy(attach, lambda rows, cols: _resize(opts.root, cid, rows, cols))
            while True:
                message, _ = ch.recv()
                if "exited" in message:
                    return int(message["exited"]["exitCode"])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    except ChannelClosed:
        raise ContainerError(f"container {cid!r}: its supervisor exited unexpectedly") from None
    finally:
        ch.close()
        if attach is not None:
            attach.close()
        if remove and not detach:
            from runtime.container.delete import delete
            try:
                delete(opts.root, cid, force=True)
            except ContainerError:
                pass


def _forward(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _attach(root: str, cid: str):
    from runtime.container.start import _connect
    from runtime.container.state import StateDir

    ch = _connect(StateDir(root, cid))
    ch.send({"op": "attach"})
    reply, _ = ch.recv()
    if "error" in reply:
        raise ContainerError(f"attach: {reply['error']}")
    return ch.sock


def _resize(root: str, cid: str, rows: int, cols: int) -> None:
    from runtime.container.start import _connect
    from runtime.container.state import StateDir

    try:
        ch = _connect(StateDir(root, cid))
    except ContainerError:
        return
    try:
        ch.send({"op": "resize", "rows": rows, "cols": cols})
        ch.recv()
    except OSError:
        pass
    finally:
        ch.close()
