"""The command server's wire format: what a thin CLI client sends a zygote, and what it hears back.

A command server (Mercurial's chg is the model) runs a whole CLI command inside a fork of a warm,
pre-imported process, on behalf of a client that is a tiny program: it connects to
<root>/command.sock, hands over everything that makes up "a command run by this user, here" and
waits. Python's start-up is the client's only real cost; the imports (tens of milliseconds on
these machines) were paid once, when the zygote started.

What travels, on one SOCK_SEQPACKET connection (message boundaries are kept, so a packet is a
message and needs no length prefix):

    client → server   ONE request packet, with four fds as SCM_RIGHTS ancillary data:
                      the client's stdin, stdout, stderr and an O_PATH fd of its working directory.
                      The packet itself is NUL-separated bytes:

                          b"command-v1\\0" UMASK b"\\0" N b"\\0" ARGV0 b"\\0" ... ARGVN-1 b"\\0"
                                                         KEY=VALUE b"\\0" KEY=VALUE b"\\0" ...

                      UMASK in octal, N (the number of argv words) in decimal, then the argv and
                      the environment. NUL is a safe separator: the kernel hands programs their
                      argv and environment as NUL-terminated C strings, so neither can contain one.
                      Words are raw bytes (os.fsencode of sys.argv, os.environb), so arguments
                      that are not valid UTF-8 — a file name, say — arrive exactly as typed.

    server → client   b"pid 1234"   the worker running the command (the client forwards signals
                                    to it: ^C, SIGTERM, window size changes, ...)
                      b"exit 3"     the command's exit status; the server closes the connection
               or     b"refused REASON"  nothing was run (not our uid, a malformed request, an
                                    older format): the client may run the command itself.

If the connection closes after "pid" but before "exit", the worker died mid-command. The client
must then NOT run the command again — it may already have had side effects — and reports it.

Why bytes and not JSON like channel.py: the client must be parseable without `json` (which
imports `re`), `socket` (which imports `enum`) or even `os` — a few milliseconds each here, on
every CLI call. So this module imports nothing, and its functions work on bytes only.
"""

# No `from __future__ import annotations` here: on the command server's fast path even that is
# one more module to load (~0.1 ms).
MAGIC = b"command-v1"          # bump the version when the format changes: old servers refuse it
SOCKET_NAME = "command.sock"
MAX_REQUEST = 1 << 20          # argv + environment; the kernel's own ARG_MAX is 2 MiB on Linux
FDS = ("stdin", "stdout", "stderr", "cwd")  # the fds that ride along, in this order


class BadRequest(ValueError):
    """A request packet that does not follow this format (the server refuses it)."""


def encode_request(umask: int, argv: list[bytes], env: list[tuple[bytes, bytes]]) -> bytes:
    words = [MAGIC, b"%o" % umask, b"%d" % len(argv), *argv]
    words += [key + b"=" + value for key, value in env]
    for word in words:
        if b"\0" in word:
            raise BadRequest(f"a NUL byte in {word!r}")
    return b"\0".join(words) + b"\0"


def decode_request(data: bytes) -> tuple[int, list[bytes], list[tuple[bytes, bytes]]]:
    """(umask, argv, environment) of a request packet; BadRequest if it is not one."""
    if not data.endswith(b"\0"):
        raise BadRequest("not NUL-terminated")
    words = data[:-1].split(b"\0")
    if words[0] != MAGIC:
        raise BadRequest(f"expected {MAGIC.decode()}, got {words[0][:32]!r}")
    try:
        umask, count = int(words[1], 8), int(words[2])
    except (IndexError, ValueError):
        raise BadRequest("no umask and argv count") from None
    if not 0 <= count <= len(words) - 3 or not 0 <= umask <= 0o777:
        raise BadRequest(f"argv count {count}, umask {umask:o}")
    argv = words[3:3 + count]
    env = []
    for entry in words[3 + count:]:
        key, eq, value = entry.partition(b"=")
        if not eq or not key:
            raise BadRequest(f"environment entry {entry[:32]!r} is not KEY=VALUE")
        env.append((key, value))
    return umask, argv, env


def encode_reply(kind: str, value: int | str) -> bytes:
    """b"pid 1234", b"exit 3" or b"refused REASON"."""
    return f"{kind} {value}".encode(errors="backslashreplace")


def decode_reply(data: bytes) -> tuple[str, str]:
    """("pid", "1234"), ("exit", "3"), ("refused", "REASON"); ("", "") for EOF (b"")."""
    kind, _, value = data.decode(errors="replace").partition(" ")
    return kind, value
