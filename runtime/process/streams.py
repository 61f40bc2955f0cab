"""A container's output, as the supervisor handles it: pipes or a pty, into a CRI log and to
attached clients.

Three ways a container's stdio can be connected (ContainerPlan.stdio):

    inherit   the container gets its creator's own fds 0-2 (runc's pass-through: `nodeagent
              runtime create/run`, and a foreground `nodeagent run`): nothing to pump
    log       stdout and stderr are pipes whose read ends only the supervisor holds; everything
              read goes to the CRI log (logs.py), and to the pipes of attached clients ("tees",
              given to us by `attach`, non-blocking: a slow client loses output, the container
              never waits for it). Stdin is /dev/null — or, with stdin_pipe (CRI's stdin), a pipe
              whose write end we hold and feed from an attached client's stdin; with stdin_once
              it is closed when that client's input ends, so the program sees EOF.
    tty       the container's init makes a pty in its own devpts and sends the master side here.
              Output goes to the log (as "stdout", as CRI does for terminals) and to every
              attached client; input from an attached client goes to the program. (With
              --console-socket the master goes to that socket instead, and is not ours.)

Somebody must always read: a program blocks once a pipe or pty buffer is full. That somebody is
the supervisor, which is why it owns the read ends (who owns what: this object owns the pipes'
read ends, the pty master, the log file and the attached clients' sockets).
"""

from __future__ import annotations

import os
import selectors

from runtime.process.logs import CriLog


class Streams:
    def __init__(self, stdio: str, log_path: str | None, log_max_bytes: int, *,
                 stdin_pipe: bool = False, stdin_once: bool = False):
        self.stdio = stdio
        self.stdin_pipe, self.stdin_once = stdin_pipe, stdin_once
        self.stdin_w = -1                    # "log" + stdin_pipe: the container's stdin, our end
        self.tees: list[dict[str, int]] = [] # attached clients' output pipes: {"stdout": fd, ...}
        self.inputs: list[int] = []          # attached clients' stdin pipes (read ends)
        self.log = CriLog(log_path, log_max_bytes) if log_path and stdio != "inherit" else None
        self.pipes: dict[int, str] = {}      # read end → "stdout" / "stderr"
        self.master = -1                     # pty master, once the init has sent it
        self.attached: list = []             # sockets of clients attached to the terminal
        self.sel: selectors.BaseSelector | None = None

    # --- before the init is forked ----------------------------------------------------------------
    def child_fds(self, stdin_open: bool) -> tuple[tuple[int, int, int], list[int]]:
        """The init's fds 0, 1, 2, and the fds only the supervisor keeps (to close in the init)."""
        null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        if self.stdio == "inherit":
            if stdin_open:
                os.close(null)
                return (0, 1, 2), []
            return (null, 1, 2), []
        ours = [self.log.fd] if self.log else []
        if self.stdio == "tty":
            return (null, null, null), ours  # the init replaces them with its pty
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        self.pipes = {out_r: "stdout", err_r: "stderr"}
        stdin = null
        if self.stdin_pipe:
            os.close(null)
            stdin, self.stdin_w = os.pipe2(os.O_CLOEXEC)
            os.set_blocking(self.stdin_w, False)  # a program that does not read never blocks us
            ours.append(self.stdin_w)
        return (stdin, out_w, err_w), [out_r, err_r, *ours]

    # --- while the container runs -----------------------------------------------------------------
    def register(self, sel: selectors.BaseSelector) -> None:
        self.sel = sel
        for fd in self.pipes:
            sel.register(fd, selectors.EVENT_READ, self._pump)
        if self.master >= 0:
            sel.register(self.master, selectors.EVENT_READ, self._pump_pty)

    def _pump(self, key) -> None:
        fd = key.fileobj
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        stream = self.pipes[fd]
        if data:
            self.log.write(stream, data)
            self._tee_out(stream, data)
            return
        self.log.end(stream)
        self.sel.unregister(fd)
        os.close(fd)
        del self.pipes[fd]

    def _pump_pty(self, key) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError:
            data = b""  # EIO: every process holding the terminal's other side has gone
        if not data:
            self.sel.unregister(self.master)
            if self.log is not None:
                self.log.end("stdout")
            for sock in self.attached:
                sock.close()
            self.attached = []
            return
        if self.log is not None:
            self.log.write("stdout", data)
        for sock in list(self.attached):
            try:
                sock.send(data)
            except OSError:
                self.detach(sock)

    def attach(self, sock) -> None:
        """From now on `sock` carries raw terminal bytes both ways."""
        self.attached.append(sock)
        self.sel.modify(sock, selectors.EVENT_READ, lambda k: self._attach_input(sock))

    def _attach_input(self, sock) -> None:
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.detach(sock)
            return
        try:
            os.write(self.master, data)
        except OSError:
            pass

    def tee(self, out: int, err: int, inp: int = -1) -> None:
        """Copy the container's output to `out`/`err` from now on; feed `inp` to its stdin."""
        for fd in (out, err):
            os.set_blocking(fd, False)
        self.tees.append({"stdout": out, "stderr": err})
        if inp >= 0 and self.stdin_w >= 0:
            self.inputs.append(inp)
            self.sel.register(inp, selectors.EVENT_READ, lambda k: self._stdin_input(inp))
        elif inp >= 0:
            os.close(inp)

    def _tee_out(self, stream: str, data: bytes) -> None:
        for tee in list(self.tees):
            try:
                os.write(tee[stream], data)
            except BlockingIOError:
                pass                              # a slow reader loses output; we never wait
            except OSError:                       # EPIPE: the client has gone
                self.tees.remove(tee)
                for fd in tee.values():
                    os.close(fd)

    def _stdin_input(self, inp: int) -> None:
        try:
            data = os.read(inp, 65536)
        except OSError:
            data = b""
        if data and self.stdin_w >= 0:
            try:
                os.write(self.stdin_w, data)
                return
            except BlockingIOError:
                return                            # its pipe is full: the input is lost
            except OSError:
                pass                              # the program closed its stdin
        self.sel.unregister(inp)
        os.close(inp)
        self.inputs.remove(inp)
        if self.stdin_once and self.stdin_w >= 0:
            os.close(self.stdin_w)
            self.stdin_w = -1

    def detach(self, sock) -> None:
        if sock in self.attached:
            self.attached.remove(sock)
        try:
            self.sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    def resize(self, rows: int, cols: int) -> None:
        import fcntl
        import struct
        import termios

        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    # --- after the init has exited ------------------------------------------------------------------
    def drain_and_close(self) -> None:
        """Everything the container wrote before it died, up to EOF (all writers are gone now)."""
        for fd, stream in list(self.pipes.items()):
            os.set_blocking(fd, False)
            while True:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    break
                except OSError:
                    data = b""
                if not data:
                    break
                self.log.write(stream, data)
                self._tee_out(stream, data)
            self.log.end(stream)
        if self.master >= 0:
            os.set_blocking(self.master, False)
            try:
                while data := os.read(self.master, 65536):
                    if self.log is not None:
                        self.log.write("stdout", data)
            except OSError:
                pass
        if self.log is not None:
            self.log.close()
        for tee in self.tees:
            for fd in tee.values():
                os.close(fd)
        self.tees = []
        for fd in self.inputs + ([self.stdin_w] if self.stdin_w >= 0 else []):
            os.close(fd)
        self.inputs, self.stdin_w = [], -1
