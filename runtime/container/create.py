"""create: from a spec to a container in the OCI "created" state — or to nothing at all.

Runs in the caller's process (the CLI, or a helper of the agent), which must be single-threaded:
it forks the supervisor, which then runs Python code (see shim.py for why that is safe only here).

The steps, in order; each one registers how to undo itself before the next begins, so that a
failure anywhere — including inside the container's init, reported back through the supervisor
with the name of the step that failed — leaves nothing behind: no state directory, no cgroup, no
overlay directories, no process.

    1. check the spec against what this host and runtime can do (before touching anything)
    2. the state directory <root>/<id> (mkdir is the lock: a second create of the same id fails)
       and state.json saying "creating", with the paths we are about to use
    3. compile the seccomp profile (libseccomp, in this process, once)
    4. overlay upper/work directories, if the root is made of layers
    5. the cgroup, with every limit written — before any process is in it
    6. the supervisor, which forks the container's init, which builds the container and reports
       "ready" (or the step that failed)
    7. state.json, complete: pids and their start times, the cgroup, the rootfs
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from runtime.container.state import (DEFAULT_ROOT, DEFAULT_STORAGE, ContainerState, StateDir,
                                     process_start_time, write_atomic)
from runtime.errors import ContainerError, ContainerExists, SpecError, StepError
from runtime.statefiles import thread_count
from runtime.process.channel import Channel, ChannelClosed
from runtime.spec.model import ContainerSpec


@dataclass(frozen=True)
class CreateOptions:
    root: str = DEFAULT_ROOT               # state directories
    storage: str = DEFAULT_STORAGE         # overlay upper/work directories
    bundle: str = ""                       # recorded in the state, as runc does
    stdio: str | None = None               # "inherit" | "log" | "tty"; None: tty if the spec asks
    log_path: str | None = None            # CRI log; default <state dir>/container.log
    log_max_bytes: int = 10 << 20
    stdin_open: bool = True                # stdio "inherit": give the container our stdin too
    remove_on_exit: bool = False           # the supervisor deletes the container when it exits
    # Double-fork the supervisor, so that it is reparented at once and a long-lived creator (the
    # agent, a test making 1,000 containers) never holds it as a zombie child. A creator that
    # exits soon anyway (the CLI, a zygote worker) may skip the extra fork (~0.6 ms).
    orphan_supervisor: bool = True
    cgroup_parent: str = "nodeagent"       # default cgroup: <our cgroup>/<parent>/<id>
    stdin_pipe: bool = False               # stdio "log": stdin a pipe for attach (else /dev/null)
    stdin_once: bool = False               # ... closed after the first attach's input ends
    explain_fd: int | None = None
    console_socket: str | None = None      # stdio "tty": hand the pty master to this socket


@dataclass
class Created:
    state: ContainerState
    channel: Channel                       # to the supervisor; close it to detach

    def detach(self) -> None:
        self.channel.close()


class _Undo:
    """Undo actions, run newest first; a failing undo never hides the original error."""

    def __init__(self):
        self.actions: list = []

    def push(self, fn, *args) -> None:
        self.actions.append((fn, args))

    def run(self) -> None:
        for fn, args in reversed(self.actions):
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - best effort; the caller reports the first failure
                pass
        self.actions.clear()


def check_spec(spec: ContainerSpec) -> None:
    """What we refuse before making anything (bundle.py already checked the JSON itself)."""
    from runtime.rootfs.masks import check_sysctls
    from runtime.spec.limits import check_resources
    from runtime.spec.names import check_hostname

    check_resources(spec.linux.resources)  # (a spec from config.json was checked already)
    if spec.hostname:
        check_hostname(spec.hostname, "hostname")

    net, ipc = spec.linux.namespace("network"), spec.linux.namespace("ipc")
    check_sysctls(spec.linux.sysctl, net is not None and net.path is None,
                  ipc is not None and ipc.path is None)
    for ns in spec.linux.namespaces:
        if ns.path is not None and not os.path.exists(ns.path):
            raise SpecError(f"linux.namespaces[{ns.type}].path", f"{ns.path} does not exist")


def device_rules(resources):
    """The device cgroup rules a container gets: deny everything, then the spec's own rules, then
    the devices every container needs (/dev/null, ptys, ... — runc appends the same list), so a
    bundle cannot forget to close the door on the host's disks.

    A spec made by our own defaults (runtime.spec.defaults) already starts with the deny and ends
    with the list: those are not added twice (twice is the same rules, written twice — and printed
    twice by --explain): a deny-all right after the deny-all, or the list again right after itself,
    changes nothing."""
    import dataclasses

    from runtime.spec.defaults import DEFAULT_DEVICE_RULES
    deny, needed = DEFAULT_DEVICE_RULES[:1], DEFAULT_DEVICE_RULES[1:]
    own = resources.devices
    if own[:1] == deny:
        own = own[1:]
    if needed and own[-len(needed):] == needed:
        own = own[:-len(needed)]
    return dataclasses.replace(resources, devices=deny + own + needed)


def create(cid: str, spec: ContainerSpec, opts: CreateOptions = CreateOptions()) -> Created:
    """Create container `cid` from `spec` (see the module docstring for the steps). The caller
    must be single-threaded: we fork. Returns the state and the channel to the supervisor."""
    _check_single_threaded()
    explain_fd = _own_explain_fd(opts)
    try:
        return _create(cid, spec, opts, explain_fd)
    finally:
        if explain_fd is not None:
            os.close(explain_fd)


def create_and_supervise(cid: str, spec: ContainerSpec, opts: CreateOptions, client: Channel,
                         supervise=None):
    """Create container `cid` and become its supervisor: for a zygote worker, a fresh process with
    nothing else to do, which saves forking one (and the supervisor the cost of touching its pages
    for the first time — see zygote.py). `client` receives {"created": state record} (or an
    error) and then talks to us as to any supervisor. Returns only by raising, before anything is
    left behind; once the supervisor runs, it ends the process itself.

    `supervise(plan, client, finish, undo)`, if given, is called instead of becoming the
    supervisor here (shim.become_supervisor's arguments; it never returns): the zygote hands the
    plan to a leaner process that supervises (runtime/zygote/server.py, "lean supervisors")."""
    _check_single_threaded()
    _create(cid, spec, opts, _own_explain_fd(opts), client, supervise)


def _check_single_threaded() -> None:
    threads = thread_count()
    if threads != 1:
        raise ContainerError(f"create forks the container's supervisor, so it must run in a "
                             f"single-threaded process (this one has {threads} threads); from a "
                             "threaded program, ask a zygote (runtime/zygote/)")


def _own_explain_fd(opts: CreateOptions) -> int | None:
    """Our own copy of the explain fd, above 2: the container's init replaces its fds 0-2."""
    if opts.explain_fd is None:
        return None
    import fcntl
    return fcntl.fcntl(opts.explain_fd, fcntl.F_DUPFD_CLOEXEC, 3)


def _create(cid: str, spec: ContainerSpec, opts: CreateOptions, explain_fd: int | None,
            client: Channel | None = None, supervise=None) -> Created:
    from runtime.explain import Explainer

    explainer = Explainer(explain_fd, "create")
    state_dir = StateDir(opts.root, cid)
    check_spec(spec)
    stdio = opts.stdio or ("tty" if spec.process.terminal else "log")
    if stdio not in ("inherit", "log", "tty"):
        raise SpecError("stdio", f"must be inherit, log or tty, not {stdio!r}")
    undo = _Undo()
    try:
        explainer.step(f"make the state directory {state_dir.path}")
        os.makedirs(opts.root, mode=0o711, exist_ok=True)
        try:
            os.mkdir(state_dir.path, 0o700)
        except FileExistsError:
            raise ContainerExists(cid) from None
        undo.push(_rmtree, state_dir.path)
        storage = os.path.join(opts.storage, cid) if spec.root.layers else None
        cgroup_path = spec.linux.cgroups_path or f"{opts.cgroup_parent}/{cid}"
        record = {"id": cid, "status": "creating", "bundle": opts.bundle, "storage": storage,
                  "cgroupsPath": cgroup_path, "creator": os.getpid(),
                  "creator_start": process_start_time(os.getpid())}
        if spec.linux.namespace("mount") is None:
            # It shares our mount namespace: its mounts are left in ours for `delete` to detach.
            record["host_rootfs"] = storage and os.path.join(storage, "rootfs") or spec.root.path
        if spec.hooks.poststop:  # `delete` runs them, from the record (the bundle may change)
            from runtime.spec.bundle import hooks_to_dict
            record["poststop"] = hooks_to_dict(spec.hooks)["poststop"]
            record["ociVersion"] = spec.oci_version
        write_atomic(state_dir.file("state.json"), record)

        program = None
        if spec.linux.seccomp is not None:
            explainer.step("compile the seccomp profile to BPF (libseccomp)")
            from runtime.confine.seccomp import compile_profile
            program = compile_profile(spec.linux.seccomp)

        from runtime.rootfs import RootfsPlan
        if storage is not None:
            explainer.step(f"make the overlay directories in {storage}")
            for sub in ("upper", "work", "rootfs"):
                os.makedirs(os.path.join(storage, sub), mode=0o755)
            undo.push(_rmtree, storage)
            plan_root = RootfsPlan(os.path.join(storage, "rootfs"), os.path.join(storage, "upper"),
                                   os.path.join(storage, "work"))
        else:
            plan_root = RootfsPlan(spec.root.path)

        explainer.step(f"create the cgroup {cgroup_path} and write its limits")
        from runtime.cgroups import create_cgroup
        from runtime.cgroups.layout import current
        cgroup = create_cgroup(current(), spec.linux.cgroups_path, f"{opts.cgroup_parent}/{cid}",
                               device_rules(spec.linux.resources), explainer.shell if explainer else None)
        undo.push(cgroup.destroy)
        undo.push(cgroup.kill_all)
        cgroup.explain = None  # later users of this object (supervisor, init) explain their own way

        from runtime.process.init import ContainerPlan
        log_path = opts.log_path or state_dir.file("container.log")
        plan = ContainerPlan(id=cid, spec=spec, rootfs=plan_root, state_dir=state_dir.path,
                             cgroup=cgroup, seccomp_program=program, stdio=stdio,
                             log_path=None if stdio == "inherit" else log_path,
                             explain_fd=explain_fd, log_max_bytes=opts.log_max_bytes,
                             stdin_open=opts.stdin_open, remove_on_exit=opts.remove_on_exit,
                             storage_dir=storage, stdin_pipe=opts.stdin_pipe,
                             stdin_once=opts.stdin_once, bundle=opts.bundle,
                             console_socket=opts.console_socket)

        def finish(created: dict) -> dict:
            """Step 7, once the supervisor reports the init ready: the complete state.json."""
            from runtime.process.logs import rfc3339nano
            record.update(status="created", rootfs=plan_root.rootfs, pid=created["pid"],
                          pid_start=created["pid_start"], shim_pid=created["shim_pid"],
                          shim_start=created["shim_start"], created=rfc3339nano(),
                          cgroup=cgroup.to_state(), log=plan.log_path, stdio=stdio,
                          annotations=dict(spec.annotations), executable=created.get("executable"))
            if opts.console_socket:
                record["console_socket"] = opts.console_socket  # the terminal is not ours
            write_atomic(state_dir.file("state.json"), record)
            return record

        if client is not None:
            explainer.step("become the supervisor, which forks the container's init")
            from runtime.process.shim import become_supervisor
            become_supervisor = supervise or become_supervisor
            os.setsid()  # a session of its own, as _spawn gives a forked supervisor
            become_supervisor(plan, client, finish=lambda c: {"created": finish(c)}, undo=undo.run)
        explainer.step(f"start the supervisor ({'double ' if opts.orphan_supervisor else ''}fork), "
                       "which forks the container's init")
        channel, created = _spawn(plan, opts.orphan_supervisor)
        undo.push(channel.close)
        if "error" in created:
            raise StepError(created.get("step") or "create", created.get("reason") or created["error"])
        finish(created)
        # What state_dir.load() would say, without reading back what we just wrote.
        state = ContainerState(id=cid, status="created", bundle=opts.bundle, rootfs=plan_root.rootfs,
                               pid=created["pid"], created=record["created"],
                               annotations=record["annotations"], record=record)
        return Created(state, channel)
    except BaseException:
        undo.run()
        raise


def _rmtree(path: str) -> None:
    from runtime.container.state import remove_tree
    try:
        remove_tree(path)
    except OSError:
        pass


def _spawn(plan, orphan: bool) -> tuple[Channel, dict]:
    """Fork the supervisor (twice if `orphan`) and wait for its verdict on the creation."""
    from runtime.process.shim import become_supervisor

    from runtime.process import sealed

    # The supervisor forks the container's init and exec'd processes, which must run from a
    # sealed interpreter (sealed.py, CVE-2019-5736). A zygote and the CLI have sealed themselves
    # already (once per process); any other creator gets a supervisor started afresh from one.
    inherit_sealed = sealed.is_sealed()
    ours, theirs = Channel.pair()
    pid = os.fork()
    if pid == 0:  # the supervisor — or, if orphan, the intermediate that forks it and exits
        try:
            ours.close()
            os.setsid()  # its own session: ^C at the creator's terminal is not for it
            if not orphan or os.fork() == 0:
                if not inherit_sealed:
                    from runtime.process.shim import exec_sealed_supervisor
                    exec_sealed_supervisor(plan, theirs)  # never returns
                become_supervisor(plan, theirs)  # never returns
        finally:
            os._exit(0)
    theirs.close()
    if orphan:
        os.waitpid(pid, 0)
    try:
        message, fds = ours.recv()
    except ChannelClosed:
        ours.close()
        raise ContainerError("the supervisor exited before reporting on the container") from None
    for fd in fds:
        os.close(fd)
    return ours, message
