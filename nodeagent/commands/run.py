"""`nodeagent run`: run a command in a new container, docker-run style, from a root filesystem
directory or an image.

    nodeagent run [--rm] [-d] [-i] [-t] [--name NAME] [--memory 64Mi] [--cpus 0.5] [--pids 64]
                  [--net none|host] [--env K=V]... [--volume SRC:DST[:ro]]... [--explain]
                  ROOTFS_DIR_OR_IMAGE [CMD...]

A directory is used as the (read-only) lower layer of an overlay: the container's writes go to its
own upper directory and disappear with it, the directory itself is never changed. Anything else
is an image reference: its layers (runtime/images, pulled if missing unless --pull never) become
the overlay's lower layers and its config gives the defaults (Entrypoint + Cmd, Env, WorkingDir,
User; CMD replaces Cmd). The exit status is the container's; 125 means the container could not be
created, 127 that its program was not found, as with docker (the rule: nodeagent/commands/__init__.py).
"""

from __future__ import annotations

import argparse
import os


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a command in a new container (docker-run style)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--rm", action="store_true", help="delete the container when it exits")
    p.add_argument("-d", "--detach", action="store_true", help="run in the background, print the name")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin connected")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    p.add_argument("--name", help="container name (default: a random one)")
    p.add_argument("--memory", help="memory limit, e.g. 64Mi, 1Gi")
    p.add_argument("--cpus", help="CPU limit, e.g. 0.5 or 500m")
    p.add_argument("--pids", type=int, help="maximum number of processes")
    p.add_argument("--net", choices=("none", "host"), default="none",
                   help="none: a network namespace with only lo (default); host: the host's")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    p.add_argument("-v", "--volume", action="append", default=[], metavar="SRC:DST[:ro]")
    p.add_argument("--hostname", help="hostname inside (default: the name)")
    p.add_argument("-u", "--user", help="UID[:GID] to run as")
    p.add_argument("-w", "--workdir", help="working directory inside the container")
    p.add_argument("--read-only", action="store_true", help="mount the root filesystem read-only")
    p.add_argument("--cap-add", action="append", default=[], metavar="CAP",
                   help="add a capability (e.g. NET_ADMIN, or ALL)")
    p.add_argument("--cap-drop", action="append", default=[], metavar="CAP",
                   help="drop a capability (e.g. NET_RAW, or ALL)")
    p.add_argument("--privileged", action="store_true",
                   help="every capability, no seccomp, no masked paths, all devices (dangerous)")
    p.add_argument("--explain", action="store_true", help="print every step with its shell equivalent")
    p.add_argument("--root", default="/run/nodeagent/runtime", help=argparse.SUPPRESS)
    p.add_argument("--storage", default="/var/lib/nodeagent/runtime", help=argparse.SUPPRESS)
    p.add_argument("--image-store", default=os.environ.get("NODEAGENT_IMAGE_STORE", "/var/lib/nodeagent/images"),
                   help="image store (default: %(default)s; env NODEAGENT_IMAGE_STORE)")
    p.add_argument("--pull", choices=("missing", "never", "always"), default="missing",
                   help="pull the image: if missing (default), never, or always")
    p.add_argument("rootfs", metavar="ROOTFS_DIR_OR_IMAGE")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD")
    p.set_defaults(func=main)


def build_spec(args: argparse.Namespace, name: str):
    """The container spec the flags describe: docker's flags resolved here, the spec assembled by
    the function the agent's CRI uses too (nodeagent/cri/spec.py: container_spec). Each bad flag
    is a SpecError naming it."""
    import dataclasses

    from nodeagent.cri.spec import Bind, container_spec, merge_argv, merge_env
    from runtime.errors import SpecError
    from runtime.spec.defaults import (DEFAULT_DEVICE_RULES, DEFAULT_ENV, DEFAULT_NAMESPACES,
                                       default_capabilities)
    from runtime.spec.image_config import resolve_user
    from runtime.spec.model import Cpu, Memory, Namespace, Pids, Resources, User
    from runtime.spec.units import millicores_to_quota, millicores_to_shares, parse_cpus, parse_memory

    command = tuple(args.command[1:] if args.command[:1] == ["--"] else args.command)
    env = []
    for e in args.env:
        k, eq, v = e.partition("=")
        if not eq or not k:
            raise SpecError("--env", f"{e!r} is not K=V")
        env.append((k, v))
    rootfs = os.path.join(args.storage, name, "rootfs")
    if args.rootfs.startswith(("/", "./", "../")) and not os.path.isdir(args.rootfs):
        raise SpecError("ROOTFS_DIR_OR_IMAGE", f"{args.rootfs}: no such directory")
    if os.path.isdir(args.rootfs):
        if not command:
            raise SpecError("CMD", "give the command to run in the container")
        layers, argv, image_env, cwd, user = (os.path.abspath(args.rootfs),), command, (), "/", User()
    else:
        # An image: its config gives the defaults (docker's CMD replaces Cmd: Kubernetes' args).
        record = _image(args)
        config = record.config
        layers = tuple(str(d) for d in reversed(record.lowerdirs))   # overlay wants the top first
        argv = merge_argv(config.entrypoint, config.cmd, (), command)
        if not argv:
            raise SpecError("CMD", f"{record.name}: the image has neither Entrypoint nor Cmd: give "
                            "the command to run")
        image_env, cwd = config.env, config.working_dir or "/"
        try:
            user = resolve_user(config.user, layers)
        except SpecError as e:
            raise SpecError(e.field, f"{record.name}: {e.problem}") from None

    capabilities = None
    if (args.cap_add or args.cap_drop) and not args.privileged:
        try:
            capabilities = default_capabilities(tuple(args.cap_add), tuple(args.cap_drop))
        except ValueError as e:
            raise SpecError("--cap-add/--cap-drop", str(e)) from None
    if args.user:
        uid, gid = parse_user(args.user)
        user = User(uid, 0 if gid is None else gid)
    if args.workdir:
        if not args.workdir.startswith("/"):
            raise SpecError("--workdir", f"{args.workdir!r} must be an absolute path")
        cwd = args.workdir

    resources = Resources(devices=DEFAULT_DEVICE_RULES)
    if args.memory:
        limit = parse_memory(args.memory, "--memory")
        resources = dataclasses.replace(resources, memory=Memory(limit=limit, swap=limit))  # no swap, as k8s
    if args.cpus:
        milli = parse_cpus(args.cpus, "--cpus")
        resources = dataclasses.replace(resources, cpu=Cpu(shares=millicores_to_shares(milli),
                                                           quota=millicores_to_quota(milli),
                                                           period=100_000))
    if args.pids is not None:
        if args.pids < 1:
            raise SpecError("--pids", "must be at least 1")
        resources = dataclasses.replace(resources, pids=Pids(args.pids))
    binds = []
    for v in args.volume:
        parts = v.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")) \
                or not parts[1].startswith("/"):
            raise SpecError("--volume", f"{v!r}: want SRC:DST or SRC:DST:ro with an absolute DST")
        src = os.path.abspath(parts[0])
        if not os.path.exists(src):
            raise SpecError("--volume", f"{src} does not exist")
        binds.append(Bind(parts[1], src, readonly=parts[2:] == ["ro"]))
    namespaces = None   # all six of its own
    if args.net == "host":
        namespaces = tuple(Namespace(t) for t in DEFAULT_NAMESPACES if t != "network")

    return container_spec(
        argv, rootfs, layers=layers, env=merge_env(image_env, tuple(env), DEFAULT_ENV[0].partition("=")[2]),
        cwd=cwd, user=user, hostname=args.hostname or name, terminal=args.tty,
        readonly=args.read_only, capabilities=capabilities, resources=resources, binds=tuple(binds),
        namespaces=namespaces, privileged=args.privileged)


def _image(args: argparse.Namespace):
    """The image record for the reference, pulled first when --pull says so."""
    from runtime.errors import SpecError
    from runtime.images import ImageError, ImageStore

    store = ImageStore(args.image_store)
    if args.pull != "always":
        try:
            return store.get(args.rootfs)
        except ImageError as e:
            if args.pull == "never":
                raise SpecError("ROOTFS_DIR_OR_IMAGE", f"{args.rootfs}: not a directory, and not an "
                                f"image in {args.image_store} ({e})") from None
    import asyncio

    from runtime.images.pull import ensure_image
    try:
        return asyncio.run(ensure_image(store, args.rootfs, policy="Always"))
    except ImageError as e:
        raise SpecError("ROOTFS_DIR_OR_IMAGE", f"{args.rootfs}: not a directory, and pulling it "
                        f"failed: {e}") from None


def parse_user(text: str) -> tuple[int, int | None]:
    """--user UID[:GID] (run, exec, runtime exec) → (uid, gid or None), each checked as every ID
    entering a container is (runtime.spec.model.MAX_ID: -1 and 4294967295 would leave the
    container root)."""
    from runtime.errors import SpecError
    from runtime.spec.model import id_problem

    uid, _, gid = text.partition(":")
    ids = []
    for part, kind in ((uid, "uid"), (gid, "gid")):
        if kind == "gid" and not part:
            ids.append(None)
            continue
        try:
            value = int(part)
        except ValueError:
            raise SpecError("--user", f"{text!r}: give a numeric UID[:GID]") from None
        if (problem := id_problem(value, kind)) is not None:
            raise SpecError("--user", f"{text!r}: {problem}")
        ids.append(value)
    return ids[0], ids[1]


def main(args: argparse.Namespace) -> int:
    import secrets

    from runtime.process import sealed

    # We fork the container's supervisor ourselves: run from a sealed interpreter first
    # (runtime/process/sealed.py; the command starts again from one, so this comes first).
    sealed.ensure_sealed()

    from runtime.container.create import CreateOptions
    from runtime.container.run import run

    name = args.name or f"na-{secrets.token_hex(4)}"
    spec = build_spec(args, name)
    stdio = "tty" if args.tty and not args.detach else ("log" if args.detach else "inherit")
    opts = CreateOptions(root=args.root, storage=args.storage, stdio=stdio,
                         stdin_open=args.interactive, explain_fd=2 if args.explain else None,
                         orphan_supervisor=False)  # we exit soon: no need to fork twice
    code = run(name, spec, opts, detach=args.detach, remove=args.rm)
    if args.detach:
        print(name)
    return code
