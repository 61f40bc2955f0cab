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
    """The container spec the flags describe (defaults from runtime.spec.defaults)."""
    import dataclasses

    from runtime.errors import SpecError
    from runtime.spec.defaults import default_spec
    from runtime.spec.model import Cpu, Memory, Mount, Pids
    from runtime.spec.units import millicores_to_quota, millicores_to_shares, parse_cpus, parse_memory

    command = tuple(args.command[1:] if args.command[:1] == ["--"] else args.command)
    for e in args.env:
        if "=" not in e:
            raise SpecError("--env", f"{e!r} is not K=V")
    rootfs = os.path.join(args.storage, name, "rootfs")
    hostname = args.hostname or name
    if args.rootfs.startswith(("/", "./", "../")) and not os.path.isdir(args.rootfs):
        raise SpecError("ROOTFS_DIR_OR_IMAGE", f"{args.rootfs}: no such directory")
    if os.path.isdir(args.rootfs):
        if not command:
            raise SpecError("CMD", "give the command to run in the container")
        spec = default_spec(command, rootfs, layers=(os.path.abspath(args.rootfs),),
                            env=tuple(args.env), hostname=hostname, terminal=args.tty,
                            readonly=args.read_only)
    else:
        spec = _spec_from_image(args, command, rootfs, hostname)
    spec = _confinement(args, spec)
    res = spec.linux.resources
    if args.memory:
        limit = parse_memory(args.memory, "--memory")
        res = dataclasses.replace(res, memory=Memory(limit=limit, swap=limit))  # no swap, as k8s
    if args.cpus:
        milli = parse_cpus(args.cpus, "--cpus")
        res = dataclasses.replace(res, cpu=Cpu(shares=millicores_to_shares(milli),
                                               quota=millicores_to_quota(milli), period=100_000))
    if args.pids is not None:
        if args.pids < 1:
            raise SpecError("--pids", "must be at least 1")
        res = dataclasses.replace(res, pids=Pids(args.pids))
    mounts = list(spec.mounts)
    for v in args.volume:
        parts = v.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")) \
                or not parts[1].startswith("/"):
            raise SpecError("--volume", f"{v!r}: want SRC:DST or SRC:DST:ro with an absolute DST")
        src = os.path.abspath(parts[0])
        if not os.path.exists(src):
            raise SpecError("--volume", f"{src} does not exist")
        options = ("rbind", "rprivate") + (("ro",) if parts[2:] == ["ro"] else ())
        mounts.append(Mount(parts[1], "bind", src, options))
    namespaces = spec.linux.namespaces
    if args.net == "host":
        namespaces = tuple(n for n in namespaces if n.type != "network")
    linux = dataclasses.replace(spec.linux, resources=res, namespaces=namespaces)
    return dataclasses.replace(spec, mounts=tuple(mounts), linux=linux)


def _spec_from_image(args: argparse.Namespace, command: tuple[str, ...], rootfs: str, hostname: str):
    """The default spec, with the image's layers and its config's process defaults."""
    import dataclasses

    from runtime.errors import SpecError
    from runtime.spec.defaults import default_spec
    from runtime.spec.image_config import process_fields

    record = _image(args)
    layers = tuple(str(d) for d in reversed(record.lowerdirs))   # overlay wants the top first
    spec = default_spec(("/unused",), rootfs, layers=layers, hostname=hostname,
                        terminal=args.tty, readonly=args.read_only)
    try:
        fields = process_fields(record.config, command, tuple(args.env), layers)
    except SpecError as e:
        raise SpecError(e.field, f"{record.name}: {e.problem}") from None
    return dataclasses.replace(spec, process=dataclasses.replace(spec.process, **fields))


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


def _confinement(args: argparse.Namespace, spec):
    """--cap-add/--cap-drop, --privileged, --user, --workdir."""
    import dataclasses

    from runtime.errors import SpecError
    from runtime.spec.defaults import default_capabilities, privileged
    from runtime.spec.model import User
    from runtime.spec.runtime_default import runtime_default_seccomp

    if args.privileged:
        spec = privileged(spec)
    elif args.cap_add or args.cap_drop:
        try:
            caps = default_capabilities(tuple(args.cap_add), tuple(args.cap_drop))
        except ValueError as e:
            raise SpecError("--cap-add/--cap-drop", str(e)) from None
        # The seccomp profile follows the capabilities (CAP_SYS_ADMIN opens mount, unshare, ...).
        linux = dataclasses.replace(spec.linux, seccomp=runtime_default_seccomp(caps.bounding))
        spec = dataclasses.replace(spec, linux=linux,
                                   process=dataclasses.replace(spec.process, capabilities=caps))
    process = spec.process
    if args.user:
        process = dataclasses.replace(process, user=User(*parse_user(args.user)))
    if args.workdir:
        if not args.workdir.startswith("/"):
            raise SpecError("--workdir", f"{args.workdir!r} must be an absolute path")
        process = dataclasses.replace(process, cwd=args.workdir)
    return dataclasses.replace(spec, process=process)


def parse_user(text: str) -> tuple[int, int]:
    """--user UID[:GID] → (uid, gid), each checked as every ID entering a container is
    (runtime.spec.model.MAX_ID: -1 and 4294967295 would leave the container root)."""
    from runtime.errors import SpecError
    from runtime.spec.model import id_problem

    uid, _, gid = text.partition(":")
    ids = []
    for part, kind in ((uid, "uid"), (gid or "0", "gid")):
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
