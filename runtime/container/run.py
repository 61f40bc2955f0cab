"""run: create, start and (unless detached) wait — `runc run` and `docker run` in one function.

In the foreground the caller stays connected to the supervisor through the channel `create`
returned: it asks it to start the container and then blocks until the supervisor reports the exit.
Signals the caller receives (^C, SIGTERM, ...) are passed on to the container's init, as runc
does. If the caller is killed instead, nothing happens to the container: the supervisor carries on,
records the exit, and `state` reports it later — the crash-proof property ARCHITECTURE.md asks for.

`drive` is the part after creation. It imports nothing heavy, so a client that had a zygote
create the container (runtime/zygote/) can use it with only the channel in hand.
"""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager

from runtime.errors import ContainerError, StepError
from runtime.process.channel import Channel, ChannelClosed

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def run(cid: str, spec, opts, *, detach: bool = False, remove: bool = False, on_created=None) -> int:
    """Exit code of the container (foreground), or 0 once it is running (detach).
    `on_created(pid)` is called between create and start (e.g. to write a pid file).
    With `remove`, the supervisor deletes the container when it exits — even if we are gone."""
    import dataclasses

    from runtime.container.create import create

    if remove and not detach:
        opts = dataclasses.replace(opts, remove_on_exit=True)
    with signals_held():
        created = create(cid, spec, opts)
        return drive(created.channel, created.state.record, opts.root, cid, detach=detach,
                     remove=remove, on_created=on_created)


@contextmanager
def signals_held():
    """Hold (block) the signals a foreground run passes on, from before the container exists
    until drive() has it running and lets them through. A SIGTERM in the middle of a create
    would otherwise end this process half-way: a state directory "creating" for ever, or a
    container created that nobody will start or delete. Processes forked meanwhile inherit the
    block; the supervisor and the container's init clear their own signal masks."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def drive(ch: Channel, record: dict, root: str, cid: str, *, detach: bool = False,
          remove: bool = False, on_created=None) -> int:
    """Start a created container over its supervisor channel and, unless detached, wait."""
    attach = None
    started = False
    try:
        if on_created is not None:
            on_created(record["pid"])
        if record.get("stdio") == "tty" and not detach and not record.get("console_socket"):
            attach = _attach(root, cid)
        pid = record["pid"]
        previous = {}
        # A signal that comes while the container is being started (^C right after Enter) is for
        # the container too, but the program is not running yet: hold it (blocked, pending) until
        # "started", then let it through to our handlers, which pass it on — as runc does.
        held = () if detach else FORWARDED
        signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            ch.send({"op": "start"})
            reply, _ = ch.recv()
            started = True
            if "error" in reply:
                raise StepError("start", reply["error"])  # init exits; the supervisor records it
            if detach:
                return 0
            previous = {sig: signal.signal(sig, lambda s, _f: _forward(pid, s)) for sig in FORWARDED}
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, held)
        try:
            if attach is not None:
                from runtime.process.terminal import proxy
                proxy(attach, lambda rows, cols: _resize(root, cid, rows, cols))
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
        if remove and not detach and not started:
            from runtime.container.delete import delete
            try:
                delete(root, cid, force=True)  # never started: nobody else will remove it
            except ContainerError:
                pass


def _forward(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _attach(root: str, cid: str):
    ch = Channel.connect(os.path.join(root, cid, "shim.sock"), timeout=5)
    ch.send({"op": "attach"})
    reply, _ = ch.recv()
    if "error" in reply:
        raise ContainerError(f"attach: {reply['error']}")
    return ch.sock


def _resize(root: str, cid: str, rows: int, cols: int) -> None:
    try:
        ch = Channel.connect(os.path.join(root, cid, "shim.sock"), timeout=5)
    except OSError:
        return
    try:
        ch.send({"op": "resize", "rows": rows, "cols": cols})
        ch.recv()
    except OSError:
        pass
    finally:
        ch.close()
