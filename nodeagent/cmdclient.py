"""The thin client of a command server: have a warm zygote run this `nodeagent runtime ...` call.

Why: a `nodeagent runtime run` spends most of its time before it does anything — starting Python
and importing argparse, json, socket and the runtime costs ~35 ms here, the container itself ~13.
A zygote started with `nodeagent runtime zygote -d` has paid for the imports once, and serves
<root>/command.sock: it forks a worker per command that takes over our argv, environment, working
directory, umask and stdin/stdout/stderr, and runs the CLI's code exactly as this process would
have (runtime/zygote/cmdserver.py). We forward signals to that worker and exit with its status.
Mercurial's chg does the same for `hg`.

So that this is worth it, this module imports only `sys` and three built-in modules (compiled into
the interpreter: nothing to find or load): `_socket`, `_signal` and `posix` — the C halves of
`socket`, `signal` and `os`. The full modules would import `enum`, `re`, `stat`, ... at a few
milliseconds each, on every call. The request format (runtime/zygote/cmdwire.py) imports nothing.

When there is no server for the state root (no socket; a stale one, whose zygote was killed; a
refusal), `try_command_server` returns None and the caller runs the command itself: the server
makes commands faster, never necessary. Only `runtime` verbs go to it — the zygote serves one
state root, and other commands (doctor, run, server, ...) need modules it has not imported.

What the worker cannot be told: it runs the code its zygote imported when it started (restart the
zygote after changing the code), in the zygote's cgroup and session. And ^Z stops this client
only (SIGTSTP is not forwarded: the worker is not in our terminal's job control).
"""

# No `from __future__ import annotations` here: on the command server's fast path even that is
# one more module to load (~0.1 ms).
import _signal
import _socket
import posix
import sys

from runtime.zygote import cmdwire

DEFAULT_ROOT = "/run/nodeagent/runtime"  # = nodeagent.commands.runtime.DEFAULT_ROOT (argparse-free here)
FORWARDED = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT, _signal.SIGUSR1,
             _signal.SIGUSR2, _signal.SIGWINCH)
# Verbs that must run in this process: `zygote` would start a server from inside a server's worker.
LOCAL_VERBS = ("zygote",)


def try_command_server(argv: list[str]) -> int | None:
    """Exit status of `nodeagent *argv` as run by a command server, or None if none took it
    (nothing has been run then: run the command here)."""
    root = runtime_root(argv)
    if root is None:
        return None
    sock = _connect(root.rstrip("/") + "/" + cmdwire.SOCKET_NAME)
    if sock is None:
        return None
    try:
        with _Forwarder() as forwarder:
            return _converse(sock, argv, forwarder)
    finally:
        sock.close()


def _converse(sock, argv: list[str], forwarder: "_Forwarder") -> int | None:
    if not _send(sock, argv):
        return None
    pid = 0
    while True:
        try:
            kind, value = cmdwire.decode_reply(sock.recv(256))
        except OSError:  # ECONNRESET: the worker is gone
            kind, value = "", ""
        if kind == "pid":
            pid = int(value)
            forwarder.start(pid)
        elif kind == "exit":
            return int(value)
        elif pid == 0:
            return None  # refused, or closed before the worker started: nothing ran
        else:
            # Never run the command again: it was running and may have done part of its work.
            print(f"nodeagent: the command server's worker (pid {pid}) exited without an exit "
                  f"status", file=sys.stderr)
            return 1


def runtime_root(argv: list[str]) -> str | None:
    """The --root of a `runtime VERB ...` command line, or None if it is not one to send.

    Only options before the verb belong to `runtime` (after it, they are the verb's: `run --root`
    would be a usage error). This reading only picks the server; the worker parses argv in full."""
    if argv[:1] != ["runtime"]:
        return None
    root = DEFAULT_ROOT
    words = iter(argv[1:])
    for word in words:
        if word in ("--root", "--storage"):
            value = next(words, None)
            if value is None:
                return None  # a usage error: let argparse say so, here
            if word == "--root":
                root = value
        elif word.startswith("--root="):
            root = word[len("--root="):]
        elif not word.startswith("-"):
            return None if word in LOCAL_VERBS else root
        # other options (--storage=DIR, --help): the worker's argparse deals with them
    return None  # no verb: a usage error or --help, cheap enough here


def _connect(path: str):
    """A connected socket, or None if nobody serves `path` (ENOENT: no zygote; ECONNREFUSED: a
    stale socket, its zygote was killed; EACCES: not ours to use)."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    dir_fd = -1
    try:
        if len(path.encode()) >= 100:  # sun_path holds 108 bytes: reach it through its directory
            directory, _, name = path.rpartition("/")
            dir_fd = posix.open(directory, posix.O_PATH | posix.O_CLOEXEC)
            path = f"/proc/self/fd/{dir_fd}/{name}"
        sock.connect(path)
        return sock
    except OSError:
        sock.close()
        return None
    finally:
        if dir_fd >= 0:
            posix.close(dir_fd)


def _send(sock, argv: list[str]) -> bool:
    """Send the request: argv, environment, umask, and fds 0-2 plus our working directory."""
    encoding, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
    words = [sys.argv[0] if sys.argv and sys.argv[0] else "nodeagent", *argv]
    umask = posix.umask(0o22)
    posix.umask(umask)  # reading the umask means setting it: put it straight back
    # posix.environ is the environment as it was when Python started; a process that has loaded
    # `os` may have changed it since (os.environ's setters putenv, but do not update posix's).
    environ = sys.modules["os"].environb if "os" in sys.modules else posix.environ
    request = cmdwire.encode_request(umask, [w.encode(encoding, errors) for w in words],
                                     list(environ.items()))
    try:
        cwd = posix.open(".", posix.O_PATH | posix.O_DIRECTORY | posix.O_CLOEXEC)
    except OSError:
        return False
    try:
        fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2, cwd))
        sock.sendmsg([request], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
        return True
    except OSError:  # EBADF: we have no stdin/out/err; EMSGSIZE: an environment over ~200 KiB
        return False
    finally:
        posix.close(cwd)


class _Forwarder:
    """Pass the signals a user sends us (^C, kill, a window resize, ...) on to the worker, as if
    it were this process. Signals that come before we know the worker's pid wait; if no worker
    ever runs the command, they are delivered to us again, with the old handlers back."""

    def __init__(self):
        self.pid = 0
        self.pending: list[int] = []
        self.previous: dict[int, object] = {}

    def __enter__(self) -> "_Forwarder":
        for sig in FORWARDED:
            self.previous[sig] = _signal.signal(sig, self._handle)
        return self

    def _handle(self, sig: int, _frame) -> None:
        if self.pid:
            try:
                posix.kill(self.pid, sig)
            except ProcessLookupError:
                pass  # the worker has just exited; its "exit" is on the way
        else:
            self.pending.append(sig)

    def start(self, pid: int) -> None:
        self.pid = pid
        for sig in self.pending:
            self._handle(sig, None)
        self.pending.clear()

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            _signal.signal(sig, handler)
        for sig in self.pending:  # never forwarded: the command will run here; so do these
            _signal.raise_signal(sig)
