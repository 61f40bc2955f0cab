"""exec: run another program in a running container, and return its exit code.

The request goes to the container's supervisor, which forks the process that joins the container
(runtime/process/execproc.py) and stays its parent. Without a terminal, our own stdin, stdout and
stderr travel along as file descriptors (SCM_RIGHTS): the program reads and writes them directly,
no copying. With a terminal, the supervisor hands back the master side of a pty created inside the
container, and we connect it to our terminal (terminal.py); resizing is a TIOCSWINSZ on it.
"""

from __future__ import annotations

import os

from runtime.container.start import _connect
from runtime.container.state import StateDir
from runtime.errors import ContainerError, InvalidState, StepError
from runtime.process.channel import ChannelClosed


def exec_process(root: str, cid: str, args: list[str], *, env: list[str] = (), cwd: str | None = None,
                 uid: int | None = None, gid: int | None = None, tty: bool = False,
                 stdio: tuple[int, int, int] = (0, 1, 2)) -> int:
    from runtime.errors import SpecError
    from runtime.spec.model import id_problem

    for name, value in (("uid", uid), ("gid", gid)):
        if value is not None and (problem := id_problem(value, name)) is not None:
            raise SpecError(f"exec {name}", problem)
    d = StateDir(root, cid)
    state = d.load()
    if state.status != "running":
        raise InvalidState(cid, state.status, "exec needs a running container")
    if not args:
        raise ContainerError("exec: no command given")
    ch = _connect(d)
    try:
        ch.send({"op": "exec", "args": list(args), "env": list(env), "cwd": cwd, "uid": uid,
                 "gid": gid, "tty": tty}, () if tty else stdio)
        reply, fds = ch.recv()
        if "error" in reply:
            for fd in fds:
                os.close(fd)
            raise StepError("exec", reply["error"])
        if tty:
            from runtime.process.terminal import proxy, set_winsize
            master = fds[0]
            try:
                proxy(master, lambda rows, cols: set_winsize(master, rows, cols))
            finally:
                os.close(master)
        message, _ = ch.recv()
        return int(message["exited"]["exitCode"])
    except ChannelClosed:
        raise ContainerError(f"container {cid!r}: the supervisor went away during exec") from None
    finally:
        ch.close()
