"""The `nodeagent` command line: a thin dispatcher over nodeagent/commands/.

Each subcommand lives in its own module and imports its heavy dependencies only when it runs, so
`nodeagent doctor` does not pay for aiohttp or pyroute2 (≈140 ms and ≈110 ms of imports here).
An AgentError from any command is printed as one line (exit status 2), never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from nodeagent.errors import AgentError

# Modules under nodeagent.commands, in the order `nodeagent --help` lists them.
COMMANDS = ["doctor", "run", "runtime", "pull", "image", "server", "kubeconfig", "cni", "net"]


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, given the terminal width up front: left to itself it imports shutil
    to ask (and shutil loads the bz2 and lzma libraries) on every parser and argument created —
    milliseconds on every CLI call, even when no help is printed."""

    def __init__(self, prog, **kw):
        import os

        try:
            kw.setdefault("width", os.get_terminal_size().columns - 2)
        except OSError:
            kw.setdefault("width", 78)
        super().__init__(prog, **kw)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kw):
        kw.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kw)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser for every command, or for `only` one of them (what `main` uses when the command
    is named: a command module's imports then cost nothing to the others)."""
    parser = _Parser(
        prog="nodeagent", description="A small, real Kubernetes: node agent and control plane.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS if only is None else [only]:
        importlib.import_module(f"nodeagent.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    named = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(named if named in COMMANDS else None).parse_args(argv)
    try:
        return args.func(args)
    except AgentError as e:
        print(f"nodeagent: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
