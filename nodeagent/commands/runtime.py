"""`nodeagent runtime`: the container runtime on its own, driven like runc, over OCI bundles.

    nodeagent runtime [--root DIR] create --bundle DIR ID     → created (waiting to be started)
    nodeagent runtime start ID                                → running
    nodeagent runtime state ID                                → OCI state JSON (+ exit details)
    nodeagent runtime kill [--all] ID [SIGNAL]
    nodeagent runtime delete [--force] ID
    nodeagent runtime exec [-t] [-e K=V] [--cwd DIR] [-u UID[:GID]] ID CMD...
    nodeagent runtime list [-q] [--format table|json]
    nodeagent runtime run [--bundle DIR] [-d] [--keep] ID     create + start (+ wait, delete)
    nodeagent runtime spec [--bundle DIR] [--rootfs DIR] [ARGS...]   write a default config.json
    nodeagent runtime zygote [-d]                             serve creates from a warm process
    nodeagent runtime zygote --stop                           end it; remove its sockets, pid file

When a zygote serves the --root (<root>/zygote.sock), create and run go through it: it has the
runtime imported already and forks a creator per request (runtime/zygote/). Started
by this command, a zygote is also a command server (<root>/command.sock): the `nodeagent`
program then hands it the whole command line, and a worker runs it (nodeagent/cmdclient.py).

As with runc, `create` and `run` hand their own stdin, stdout and stderr to the container (which
keeps them after `create` returns), or, with process.terminal, a pty: kept by the supervisor, or
sent to --console-socket. `--log FILE` writes a CRI log instead (the agent's way).

The same bundle runs under `runc run`. `--explain` (create, run) prints every step — clone flags,
each mount, pivot_root, cgroup writes, capabilities, seccomp — with the equivalent shell command.
Exit status: 0, or the container's own for `run` in the foreground and for `exec`; 1 with one
line on stderr when something is wrong, as runc (the rule: nodeagent/commands/__init__.py).
"""

from __future__ import annotations

# (argparse is imported by register, not here: the sealed re-execution of create/run resumes in
# this module with its arguments already parsed — see _reexec_sealed — and never loads it.)

DEFAULT_ROOT = "/run/nodeagent/runtime"
DEFAULT_STORAGE = "/var/lib/nodeagent/runtime"


def register(sub: argparse._SubParsersAction, only_verb: str | None = None) -> None:
    """The `runtime` parser; with `only_verb`, that verb's alone (see verb_of)."""
    import argparse

    p = sub.add_parser("runtime", help="the container runtime, runc-style, over OCI bundles",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=DEFAULT_ROOT, help=f"state directory (default {DEFAULT_ROOT})")
    p.add_argument("--storage", default=DEFAULT_STORAGE,
                   help=f"overlay upper/work directories (default {DEFAULT_STORAGE})")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    def wanted(name: str) -> bool:
        return only_verb is None or name == only_verb

    def verb(name: str, help_: str, id_arg: bool = True) -> argparse.ArgumentParser:
        v = verbs.add_parser(name, help=help_)
        if id_arg:
            v.add_argument("id", metavar="ID")
        return v

    for name, help_ in (("create", "create a container from a bundle (it waits for start)"),
                        ("run", "create and start a container, and wait for it unless -d")):
        if not wanted(name):
            continue
        v = verb(name, help_)
        v.add_argument("-b", "--bundle", default=".", help="bundle directory (default: .)")
        v.add_argument("--log", help="write stdout/stderr to this CRI log file instead of passing "
                       "our own stdio to the container (as runc does)")
        v.add_argument("--pid-file", help="write the container's pid here")
        v.add_argument("--console-socket", metavar="PATH",
                       help="with process.terminal: send the pty's master side to this unix "
                       "socket (SCM_RIGHTS), as runc does, instead of keeping it")
        v.add_argument("--explain", action="store_true", help="print every step with its shell equivalent")
        if name == "run":
            v.add_argument("-d", "--detach", action="store_true", help="do not wait; log the output")
            v.add_argument("--keep", action="store_true",
                           help="keep the stopped container (by default it is deleted, as runc does)")
    if wanted("start"):
        verb("start", "start a created container")
    if wanted("state"):
        verb("state", "print a container's state as JSON")
    if wanted("kill"):
        v = verb("kill", "send a signal to a container's init")
        v.add_argument("signal", nargs="?", default="TERM")
        v.add_argument("-a", "--all", action="store_true", help="signal every process in the container")
    if wanted("delete"):
        v = verb("delete", "delete a container")
        v.add_argument("-f", "--force", action="store_true", help="kill it first if it is running")
    if wanted("exec"):
        v = verb("exec", "run a command in a running container")
        v.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
        v.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
        v.add_argument("--cwd", help="working directory inside the container")
        v.add_argument("-u", "--user", help="UID[:GID]")
        v.add_argument("command", nargs=argparse.REMAINDER)
    if wanted("list"):
        v = verb("list", "list containers", id_arg=False)
        v.add_argument("-q", "--quiet", action="store_true", help="ids only")
        v.add_argument("--format", choices=("table", "json"), default="table")
    if wanted("zygote"):
        v = verb("zygote", "serve create requests from a pre-imported process (faster starts)",
                 id_arg=False)
        v.add_argument("-d", "--detach", action="store_true", help="run in the background")
        v.add_argument("--stop", action="store_true",
                       help="stop the zygote serving --root, and remove its sockets and pid file")
    if wanted("spec"):
        v = verb("spec", "write a default config.json (our defaults: 14 caps, RuntimeDefault seccomp)",
                 id_arg=False)
        v.add_argument("-b", "--bundle", default=".")
        v.add_argument("--rootfs", default="rootfs", help="root filesystem, relative to the bundle")
        v.add_argument("args", nargs="*", default=["sh"])
    p.set_defaults(func=main)


# The runtime parser's own options that take a value (verb_of skips them and their values).
_VALUE_OPTIONS = ("--root", "--storage")


def verb_of(argv: list[str]) -> str | None:
    """The verb of the command line `argv` (`runtime [--root DIR] [--storage DIR] VERB ...`), if it
    can be told without argparse; None for anything else (help, an abbreviated option, ...).

    Why: building every verb's parser costs a CLI call ~3.5 ms here (argparse makes a help
    formatter per argument, and looks for translations of its messages on disk each time), ~20
    million instructions; a `runtime run` needs one verb's. The CLI builds the whole parser
    whenever this says None, so a command line it does not understand is parsed as before."""
    if not argv or argv[0] != "runtime":
        return None
    i = 1
    while i < len(argv):
        word = argv[i]
        if word in _VALUE_OPTIONS:
            i += 2
        elif word.startswith(tuple(f"{o}=" for o in _VALUE_OPTIONS)):
            i += 1
        else:
            return word if word in _VERBS else None
    return None


def main(args: argparse.Namespace) -> int:
    return _VERBS[args.verb](args)


def _create_or_run(args: argparse.Namespace) -> int:
    import os

    from runtime.zygote import client as zygote

    if not os.path.exists(os.path.join(args.root, zygote.SOCKET_NAME)):
        # No zygote: this process will fork the container's supervisor itself, so it must run
        # from a sealed interpreter (runtime/process/sealed.py). Done before anything else: one
        # more interpreter start-up for a CLI without a zygote (a zygote paid it once for all
        # its containers), which resumes here rather than starting the command again.
        from runtime.process import sealed

        if not sealed.is_sealed():
            _reexec_sealed(args)
    from runtime.container.run import signals_held

    with signals_held():  # a ^C or SIGTERM now goes to the container once it runs (run.py)
        return _create_or_run_held(args)


_RESUME = "_NODEAGENT_RUNTIME_ARGS"   # the parsed arguments, for the sealed interpreter


def _reexec_sealed(args) -> None:
    """Become a sealed interpreter that goes on from here with the same parsed arguments
    (resume). Not the same command line again, as sealed.ensure_sealed does: that would start,
    import and build the parser a second time — argparse and `site` alone are ~40 million
    instructions, ~5 ms here. (Interpreter options such as -X importtime are not carried over.)
    Returns only by raising."""
    from runtime.process import sealed

    python_args, env = resume_command(args)
    sealed.exec_sealed(python_args, env=env)


def resume_command(args) -> tuple[list[str], dict[str, str]]:
    """The interpreter arguments and environment that resume the parsed `args` (_reexec_sealed;
    bench/start_instructions.py counts that process's instructions)."""
    import json

    from runtime.process import sealed

    env = sealed.python_path_env()  # (this checkout's nodeagent and runtime, first on the path)
    env[_RESUME] = json.dumps({k: v for k, v in vars(args).items() if k != "func"})
    return ["-c", "import sys; from nodeagent.commands.runtime import resume; sys.exit(resume())"], env


def resume() -> int:
    """In the sealed interpreter _reexec_sealed started: the same create or run, from where the
    first process left it (errors and exit status by the CLI's one rule, as before)."""
    import json
    import os
    from types import SimpleNamespace

    from nodeagent import cli
    from runtime.process import sealed

    sealed.ensure_sealed()  # (not sealed after all: an error, never a loop of re-executions)
    args = SimpleNamespace(**json.loads(os.environ.pop(_RESUME)), func=main)
    return cli.run_args(args)


def _create_or_run_held(args: argparse.Namespace) -> int:
    import os

    from runtime.zygote import client as zygote

    bundle = os.path.abspath(args.bundle)
    # Like runc, the container gets our own stdin/stdout/stderr (or a terminal), whether we wait
    # for it or not; a CRI log (the agent's way) only when asked for with --log.
    foreground = args.log is None
    remove = args.verb == "run" and not args.keep and not args.detach
    explain_fd = 2 if args.explain else None
    console_socket = os.path.abspath(args.console_socket) if args.console_socket else None
    conn = zygote.connect(args.root)
    if conn is not None:
        # A warm zygote creates it and hands back the supervisor channel; our stdio travels
        # with the request so that a foreground container still writes to our terminal.
        request = {"op": "create", "id": args.id, "bundle": bundle, "root": args.root,
                   "storage": args.storage, "log": args.log, "remove_on_exit": remove,
                   "foreground": foreground, "console_socket": console_socket}
        fds = [0, 1, 2] + ([explain_fd] if explain_fd is not None else [])
        record, channel = zygote.request_create(conn, request, fds)
    else:
        from runtime.container.create import CreateOptions, create
        from runtime.spec.bundle import load_bundle

        spec = load_bundle(args.bundle)
        stdio = "tty" if spec.process.terminal else ("inherit" if foreground else "log")
        opts = CreateOptions(root=args.root, storage=args.storage, bundle=bundle, stdio=stdio,
                             log_path=args.log, explain_fd=explain_fd, remove_on_exit=remove,
                             console_socket=console_socket,
                             orphan_supervisor=False)  # we exit soon: no need to fork twice
        created = create(args.id, spec, opts)
        record, channel = created.state.record, created.channel
    if args.verb == "create":
        channel.close()
        _pid_file(args.pid_file, record["pid"])
        return 0
    from runtime.container.run import drive
    return drive(channel, record, args.root, args.id, detach=args.detach, remove=remove,
                 on_created=lambda pid: _pid_file(args.pid_file, pid))


# What the verbs import when they run. A zygote imports them all up front, so that its command
# workers (and the containers they create) never wait on an import.
VERB_MODULES = ("json", "runtime.container.create", "runtime.container.delete",
                "runtime.container.exec", "runtime.container.kill", "runtime.container.run",
                "runtime.container.start", "runtime.container.state", "runtime.errors",
                "runtime.process.terminal", "runtime.spec.bundle", "runtime.spec.defaults",
                "runtime.spec.model", "nodeagent.commands.run", "termios", "tty", "fcntl")


def _zygote(args) -> int:
    """Serve creates and, as a command server, whole `nodeagent runtime` commands (cli.run in a
    worker: cmdclient.py is its client)."""
    import importlib

    from nodeagent import cli
    from runtime.process import sealed
    from runtime.zygote import server as zygote

    if args.stop:
        pid = zygote.stop(args.root)
        print(f"stopped the zygote (pid {pid})" if pid else f"no zygote was serving {args.root}")
        return 0

    # Its workers' children enter containers: the whole zygote runs from a sealed interpreter
    # (runtime/process/sealed.py), once — this command starts again from one if need be.
    sealed.ensure_sealed()

    for name in VERB_MODULES:
        importlib.import_module(name)
    parser = cli.build_parser("runtime")  # argparse, and the parser classes, once for every worker

    def warm_up() -> None:
        """A spare worker's share of a command, before it has one: parsing a command line."""
        parser.parse_args(["runtime", "--root", args.root, "run", "-b", "/", "warm-up"])

    if args.detach:
        print(zygote.start_detached(args.root, command=cli.run, warm_up=warm_up))
        return 0
    zygote.serve(args.root, command=cli.run, warm_up=warm_up)
    return 0


def _pid_file(path: str | None, pid: int) -> None:
    """Write the pid whole or not at all (rename), as runc's --pid-file does."""
    if path:
        import localfs
        localfs.write_atomic(path, str(pid), durable=False)   # a pid means nothing after a reboot


def _start(args) -> int:
    from runtime.container.start import start
    start(args.root, args.id)
    return 0


def _state(args) -> int:
    import json

    from runtime.container.state import StateDir
    print(json.dumps(StateDir(args.root, args.id).load().to_oci(), indent=2))
    return 0


def _kill(args) -> int:
    from runtime.container.kill import kill
    kill(args.root, args.id, args.signal, all_processes=args.all)
    return 0


def _delete(args) -> int:
    from runtime.container.delete import delete
    delete(args.root, args.id, force=args.force)
    return 0


def _exec(args) -> int:
    from nodeagent.commands.run import parse_user
    from runtime.container.exec import exec_process

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    uid, gid = parse_user(args.user) if args.user else (None, None)
    return exec_process(args.root, args.id, command, env=args.env, cwd=args.cwd, uid=uid, gid=gid,
                        tty=args.tty)


def _list(args) -> int:
    import json

    from runtime.container.state import list_containers
    states = list_containers(args.root)
    if args.quiet:
        for s in states:
            print(s.id)
    elif args.format == "json":
        print(json.dumps([s.to_oci() for s in states], indent=2))
    else:
        print(f"{'ID':<24} {'PID':>7}  {'STATUS':<9} {'CREATED':<32} BUNDLE")
        for s in states:
            pid = s.pid if s.status in ("created", "running") else 0
            print(f"{s.id:<24} {pid:>7}  {s.status:<9} {s.created:<32} {s.bundle}")
    return 0


def _spec(args) -> int:
    import os

    from runtime.errors import ContainerError
    from runtime.spec.bundle import write_bundle
    from runtime.spec.defaults import default_spec

    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise ContainerError(f"{path} already exists")
    spec = default_spec(tuple(args.args), os.path.join(os.path.abspath(args.bundle), args.rootfs),
                        hostname="container")
    print(write_bundle(spec, args.bundle))
    return 0


_VERBS = {"create": _create_or_run, "run": _create_or_run, "start": _start, "state": _state,
          "kill": _kill, "delete": _delete, "exec": _exec, "list": _list, "spec": _spec,
          "zygote": _zygote}
