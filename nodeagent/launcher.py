"""The `nodeagent` program on PATH: a launcher that starts Python without `site`.

pip's console script (.venv/bin/nodeagent) is an ordinary Python program, so the interpreter first
runs `site`: it finds the venv's site-packages and executes every .pth file there (setuptools'
distutils shim imports `os`, for one). That is ~3 ms here on every call — a fifth of a whole
container start, when a command server (cmdclient.py) does the rest of the work.

So the launcher this module writes starts `<venv python> -S` (no `site`), puts the directory that
holds the nodeagent package on sys.path itself, and tries the command server first. Only if none
takes the command does it run `site.main()` — exactly what -S skipped, so the venv's packages
(aiohttp, pyroute2, ...) are found as usual — and the CLI in this process.

    python -m nodeagent.launcher /usr/local/bin/nodeagent      (scripts/lib.sh, link_scripts)
"""

# No `from __future__ import annotations` here: on the command server's fast path even that is
# one more module to load (~0.1 ms).
import sys

SCRIPT = """\
#!{python} -S
# The nodeagent CLI, written by `python -m nodeagent.launcher` (see nodeagent/launcher.py).
# -S: no `site` at start-up; nodeagent.launcher.main runs it only if the command needs it.
import sys
sys.path.append({package_dir!r})
from nodeagent.launcher import main
sys.exit(main())
"""


def main() -> int:
    """The launcher's entry point (Python started with -S)."""
    from nodeagent import cmdclient

    argv = sys.argv[1:]
    code = cmdclient.try_command_server(argv)
    if code is not None:
        # The command ran elsewhere; all that is left here is Python's own shutdown (tearing down
        # modules, ~1.5 ms). Nothing of ours needs it — no atexit handlers, no open files; what we
        # printed is flushed — so end the process now.
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        import posix
        posix._exit(code)
    import site

    site.main()  # the venv's site-packages and .pth files, as a normal start would have
    from nodeagent import cli

    return cli.run(argv)


def write(path: str, python: str | None = None) -> None:
    """Write an executable launcher to `path` (replacing a file or symlink there, atomically), for
    the interpreter `python` (default: this one, which should be the venv's)."""
    import os

    import localfs

    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    text = SCRIPT.format(python=python or sys.executable, package_dir=package_dir)
    localfs.write_atomic(path, text, 0o755)  # a rename replaces a symlink itself, never its target


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m nodeagent.launcher PATH   (writes the nodeagent launcher there)")
    write(sys.argv[1])
