"""`nodeagent ps | logs | stop | rm | exec`: docker's verbs for the containers `nodeagent run` made.

    nodeagent ps [-a] [-q]                      running containers (-a: all), docker's columns
    nodeagent logs [-f] [-t] [-n N] NAME        what a `run -d` container printed (-f: and prints)
    nodeagent stop [-t SECONDS] [-s SIGNAL] NAME...   signal, wait, then SIGKILL (docker stop)
    nodeagent rm [-f] NAME...                   remove stopped containers (-f: running ones too)
    nodeagent exec [-i] [-t] [-e K=V] [-w DIR] [-u UID[:GID]] NAME CMD...

They work on the same state as `nodeagent run` (the runtime's state root, /run/nodeagent/runtime),
through the runtime's own verbs (runtime/container/: kill, delete, exec), so `nodeagent runtime
list` and these always agree. Exit status as docker's: 0, 1 when a named container failed (each
failure one line on stderr, the others still done), and the program's own for exec (the rule:
nodeagent/commands/__init__.py).
"""

from __future__ import annotations

import argparse
import sys

DEFAULT_ROOT = "/run/nodeagent/runtime"


def register(sub: argparse._SubParsersAction) -> None:
    def verb(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        p.add_argument("--root", default=DEFAULT_ROOT, help=argparse.SUPPRESS)
        return p

    p = verb("ps", "list containers made by `nodeagent run`")
    p.add_argument("-a", "--all", action="store_true", help="stopped ones too")
    p.add_argument("-q", "--quiet", action="store_true", help="names only")
    p.set_defaults(func=ps)
    p = verb("logs", "print what a container started with `run -d` has written")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing until it stops")
    p.add_argument("-t", "--timestamps", action="store_true", help="each line's time first")
    p.add_argument("-n", "--tail", type=int, metavar="N", help="only the last N lines")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=logs)
    p = verb("stop", "stop running containers: the signal, then SIGKILL after a timeout")
    p.add_argument("-t", "--time", type=float, default=10, help="seconds before SIGKILL (default 10)")
    p.add_argument("-s", "--signal", default="TERM", help="signal to send first (default TERM)")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.set_defaults(func=stop)
    p = verb("rm", "remove containers")
    p.add_argument("-f", "--force", action="store_true", help="kill and remove running ones too")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.set_defaults(func=rm)
    p = verb("exec", "run a command in a running container")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open (default)")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    p.add_argument("-w", "--workdir", help="working directory inside the container")
    p.add_argument("-u", "--user", help="UID[:GID]")
    p.add_argument("name", metavar="NAME")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD")
    p.set_defaults(func=exec_)


def _ago(stamp: str | None) -> str:
    """ "3 minutes ago", from an RFC 3339 time, as docker prints it."""
    from datetime import datetime, timezone

    if not stamp:
        return ""
    try:
        then = datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00" if "." in stamp
                                      else stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    secs = int((datetime.now(timezone.utc) - then).total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if secs >= size:
            n = secs // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return f"{secs} second{'s' if secs != 1 else ''} ago"


def _status(s) -> str:
    if s.status == "running":
        return f"Up {_ago(s.started_at).removesuffix(' ago')}"
    if s.status == "stopped":
        return f"Exited ({s.exit_code if s.exit_code is not None else '?'}) {_ago(s.finished_at)}"
    return s.status.capitalize()


def ps(args: argparse.Namespace) -> int:
    from runtime.container.state import list_containers

    states = [s for s in list_containers(args.root) if args.all or s.status == "running"]
    if args.quiet:
        for s in states:
            print(s.id)
        return 0
    print(f"{'NAME':<20} {'COMMAND':<30} {'CREATED':<18} STATUS")
    for s in states:
        command = " ".join(s.record.get("args") or [])
        command = command if len(command) <= 28 else command[:27] + "…"
        print(f"{s.id:<20} {chr(34) + command + chr(34):<30} {_ago(s.created):<18} {_status(s)}")
    return 0


def logs(args: argparse.Namespace) -> int:
    """Each record to the stream it came from (stdout or stderr), as docker logs does."""
    from runtime.container.state import StateDir
    from runtime.errors import ContainerError, ContainerNotFound
    from runtime.process.logs import read_records

    state = StateDir(args.root, args.name).load()
    path = state.record.get("log")
    if not path:
        raise ContainerError(f"container {args.name} has no log: its output went to the terminal "
                             "that ran it (a container started with `run -d` keeps one)")
    if args.tail is not None and args.tail < 0:
        raise ContainerError("--tail: must be 0 or more")

    def running() -> bool:
        try:
            return StateDir(args.root, args.name).load().status in ("created", "running")
        except ContainerNotFound:      # removed (rm -f) while we followed it
            return False

    line_start = {"stdout": True, "stderr": True}
    try:
        for rec in read_records(path, tail=args.tail, follow=args.follow, running=running):
            out = sys.stdout.buffer if rec.stream == "stdout" else sys.stderr.buffer
            data = rec.content if rec.partial else rec.content + b"\n"
            if args.timestamps and line_start[rec.stream]:
                data = rec.time.encode() + b" " + data
            line_start[rec.stream] = not rec.partial
            out.write(data)
            out.flush()
    except FileNotFoundError:
        raise ContainerError(f"container {args.name}: its log {path} is gone") from None
    return 0


def _each(command: str, names: list[str], action) -> int:
    """Run action(name) for every name; report each failure on one line, as docker does."""
    from runtime.errors import ContainerError

    status = 0
    for name in names:
        try:
            action(name)
            print(name)
        except ContainerError as e:   # one line each, and on to the next name (docker's way)
            print(f"nodeagent {command}: {e}", file=sys.stderr)
            status = 1
    return status


def stop(args: argparse.Namespace) -> int:
    from runtime.container.kill import parse_signal
    from runtime.container.stop import stop as stop_container
    from runtime.errors import ContainerError

    try:
        sig = parse_signal(args.signal)
    except ContainerError as e:
        raise ContainerError(f"--signal: {e}") from None
    return _each(args.cli_command, args.names, lambda name: stop_container(args.root, name, sig, args.time))


def rm(args: argparse.Namespace) -> int:
    from runtime.container.delete import delete
    from runtime.container.state import StateDir
    from runtime.errors import ContainerError

    def remove(name: str) -> None:
        state = StateDir(args.root, name).load()
        if state.status in ("running", "created") and not args.force:
            raise ContainerError(f"container {name} is {state.status}: stop it first, or use rm -f")
        delete(args.root, name, force=args.force)

    return _each(args.cli_command, args.names, remove)


def exec_(args: argparse.Namespace) -> int:
    from nodeagent.commands.run import parse_user
    from runtime.container.exec import exec_process
    from runtime.errors import ContainerError

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise ContainerError("give the command to run")
    uid, gid = parse_user(args.user) if args.user else (None, None)
    if args.workdir and not args.workdir.startswith("/"):
        raise ContainerError(f"--workdir {args.workdir!r} must be an absolute path")
    return exec_process(args.root, args.name, command, env=args.env, cwd=args.workdir, uid=uid,
                        gid=gid, tty=args.tty)
