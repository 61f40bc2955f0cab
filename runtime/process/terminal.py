"""Connecting the user's terminal to a container's pty: raw mode, copying bytes, window size.

When a container has a terminal, the program's side is a pty slave inside the container and the
master side reaches the user (through the supervisor for the container's own terminal, or handed
over directly for `exec -t`). This module copies bytes between the user's terminal and that other
end until the container side closes, with the local terminal in raw mode (so ^C, arrows and tab
travel to the program instead of being handled here), and passes the window size along.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import struct
from collections.abc import Callable


def _winsize(fd: int) -> tuple[int, int] | None:
    import fcntl
    import termios

    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
        return rows, cols
    except OSError:
        return None


def set_winsize(fd: int, rows: int, cols: int) -> None:
    import fcntl
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def proxy(remote: int | socket.socket, resize: Callable[[int, int], None] | None = None,
          stdin: int = 0, stdout: int = 1) -> None:
    """Copy stdin → remote and remote → stdout until the remote side closes. `remote` is a pty
    master fd or a socket carrying raw terminal bytes; `resize(rows, cols)` forwards size changes."""
    import termios
    import tty

    is_sock = isinstance(remote, socket.socket)
    rfd = remote.fileno() if is_sock else remote
    saved = None
    if os.isatty(stdin):
        saved = termios.tcgetattr(stdin)
        tty.setraw(stdin)
    old_handler = None
    if resize is not None and os.isatty(stdout):
        def on_winch(*_):
            size = _winsize(stdout)
            if size:
                resize(*size)
        old_handler = signal.signal(signal.SIGWINCH, on_winch)
        on_winch()
    watch = [rfd, stdin]
    try:
        while True:
            try:
                ready, _, _ = select.select(watch, [], [])
            except InterruptedError:
                continue
            if rfd in ready:
                try:
                    data = remote.recv(65536) if is_sock else os.read(rfd, 65536)
                except OSError:
                    data = b""
                if not data:
                    return
                os.write(stdout, data)
            if stdin in ready:
                data = os.read(stdin, 65536)
                if not data:
                    watch = [rfd]  # stdin closed: keep showing output until the program ends
                    continue
                if is_sock:
                    remote.send(data)
                else:
                    os.write(rfd, data)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        if old_handler is not None:
            signal.signal(signal.SIGWINCH, old_handler)
