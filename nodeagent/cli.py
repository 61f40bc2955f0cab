"""The `nodeagent` command line: a thin dispatcher over nodeagent/commands/.

Each subcommand lives in its own module and imports its heavy dependencies only when it runs, so
`nodeagent doctor` does not pay for aiohttp or pyroute2 (≈140 ms and ≈110 ms of imports here).
A user's error from any command is printed as one line and becomes the exit status `exit_status`
gives (the rule is in nodeagent/commands/__init__.py), never a traceback; commands raise, they do
not catch to print.

`main` first offers a `runtime` command to a command server (a warm zygote, cmdclient.py), which
runs `run` in a worker; only without one does this process run it. Even argparse (≈8 ms) is
imported only then, which is why the parser classes are made inside `build_parser`.
"""

from __future__ import annotations

import sys

# Command → its module under nodeagent.commands, in the order `nodeagent --help` lists them. (A
# module may serve several commands: containers.py is docker's ps/logs/stop/rm/exec.)
COMMANDS = {"up": "up", "down": "down", "agent": "agent", "doctor": "doctor", "run": "run", "ps": "containers",
            "logs": "containers", "exec": "containers", "stop": "containers", "rm": "containers", "runtime": "runtime",
            "pull": "pull", "image": "image", "server": "server", "kubeconfig": "kubeconfig",
            "cni": "cni", "net": "net"}

_parser_class = None


def _parser_type():
    """argparse.ArgumentParser with our formatter (made on first use: argparse is not imported
    by a call that a command server runs)."""
    global _parser_class
    if _parser_class is not None:
        return _parser_class
    import argparse

    class _Formatter(argparse.HelpFormatter):
        """argparse's formatter, given the terminal width up front: left to itself it imports
        shutil to ask (and shutil loads the bz2 and lzma libraries) on every parser and argument
        created — milliseconds on every CLI call, even when no help is printed."""

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

    _parser_class = _Parser
    return _parser_class


_parsers: dict = {}  # built once per process, by `only`


def build_parser(only: str | None = None,
                 verb: str | None = None) -> "argparse.ArgumentParser":  # noqa: F821
    """The parser for every command, or for `only` one of them (what `run` uses when the command
    is named: a command module's imports then cost nothing to the others), and, for `runtime`,
    for its `verb` only (nodeagent/commands/runtime.py, verb_of).

    Built once per process and then reused: a zygote builds the whole `runtime` parser before it
    forks its command workers, which would otherwise spend 2.5 ms each building it again."""
    if (only, verb) in _parsers:
        return _parsers[only, verb]
    import importlib

    parser = _parser_type()(
        prog="nodeagent", description="A small, real Kubernetes: node agent and control plane.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = dict.fromkeys(COMMANDS.values() if only is None else [COMMANDS[only]])
    for module in modules:
        command = importlib.import_module(f"nodeagent.commands.{module}")
        if verb is None:
            command.register(sub)
        else:
            command.register(sub, verb)
    for name, command_parser in sub.choices.items():
        # The command's name, for its error lines and exit status (args.command may be taken: it
        # is also the dest of `run CMD...`).
        command_parser.set_defaults(cli_command=name)
    _parsers[only, verb] = parser
    return parser


def main(argv: list[str] | None = None) -> int:
    """`nodeagent ARGS...`: through a command server if one serves it, else in this process."""
    from nodeagent import cmdclient

    argv = sys.argv[1:] if argv is None else argv
    code = cmdclient.try_command_server(argv)
    return run(argv) if code is None else code


def run(argv: list[str]) -> int:
    """Run the command in this process (a command server's worker calls this too)."""
    named = next((a for a in argv if not a.startswith("-")), None)
    only = named if named in COMMANDS else None
    verb = None
    if only == "runtime" and (only, None) not in _parsers:  # (a zygote's workers have it all)
        from nodeagent.commands.runtime import verb_of
        verb = verb_of(argv)
    return run_args(build_parser(only, verb).parse_args(argv))


def run_args(args) -> int:
    """Run a parsed command line (argparse's namespace, or one with the same attributes: the
    sealed re-execution of `runtime create/run` resumes here, nodeagent/commands/runtime.py)."""
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        ruled = exit_status(args.cli_command, e)
        if ruled is None:
            raise                      # not a user's error: a bug, with its traceback
        status, runtime_error = ruled
        if runtime_error:
            verb = getattr(args, "verb", None) if args.cli_command == "runtime" else None
            print(f"nodeagent {args.cli_command}{' ' + verb if verb else ''}: {e}", file=sys.stderr)
        else:
            print(f"nodeagent: error: {e}", file=sys.stderr)
        return status


# The errors users meet, by package, each a class named by module and class, looked up only among
# the modules already imported: an error of a module never imported cannot have been raised, and
# the CLI must not import aiohttp or pyroute2 just to ask (see the module docstring).
USER_ERRORS = ("nodeagent.errors.AgentError", "runtime.images.errors.ImageError",
               "cni.errors.CNIError", "network.errors.NetworkError", "runtime.sys.errors.SyscallError",
               "controlplane.storage.interface.StorageError")
# docker run's statuses for a container that did not run (the container's own status otherwise).
DOCKER_RUN_FAILED, DOCKER_RUN_NOT_FOUND = 125, 127


def exit_status(command: str, error: BaseException) -> tuple[int, bool] | None:
    """(exit status, is it the runtime's error) for `error` escaping `nodeagent COMMAND`, or None
    when it is not a user's error. The rule, in one place (nodeagent/commands/__init__.py says why):

        runtime errors (runtime.errors.ContainerError)
            `run`                     125, or 127 when the program was not found (docker run)
            every other command       1 (runc's verbs; docker's ps/stop/rm/exec)
        every other user's error (USER_ERRORS)    2
    """
    if _is(error, "runtime.errors.ContainerError"):
        if command == "run":
            return (DOCKER_RUN_NOT_FOUND if getattr(error, "step", None) == "find the executable"
                    else DOCKER_RUN_FAILED), True
        return 1, True
    if any(_is(error, name) for name in USER_ERRORS):
        return 2, False
    return None


def _is(error: BaseException, dotted: str) -> bool:
    module, _, name = dotted.rpartition(".")
    cls = getattr(sys.modules.get(module), name, None)
    return cls is not None and isinstance(error, cls)


if __name__ == "__main__":
    sys.exit(main())
