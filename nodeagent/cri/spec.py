"""From a CRI ContainerConfig, the pod's sandbox and the image, to the OCI spec the runtime runs.

This is containerd's `containerSpec` (internal/cri/server/container_create_linux.go), kept pure:
no files are written and no kernel is asked, so every rule here is checked by unit tests.

Two steps: `build_spec` resolves the CRI's fields (the rules below), then `container_spec` — a
plain function over plain values, with no CRI type in its signature — assembles the ContainerSpec.
`nodeagent run` (nodeagent/commands/run.py) resolves docker's flags its own way and calls the same
`container_spec` (and merge_argv/merge_env: docker's CMD is Kubernetes' args), so a container
made from the command line and one made for a pod are made the same way.

The rules, with where Kubernetes states them:

    argv      Kubernetes' command/args rule (k8s.io/docs "Define a Command and Arguments"):
              command given      → command + args   (the image's Entrypoint and Cmd are dropped)
              only args given    → Entrypoint + args (Cmd is dropped)
              neither            → Entrypoint + Cmd
              empty result       → CreateContainerError "no command specified" (containerd's words)
    env       HOSTNAME (the sandbox's) and TERM=xterm for a tty, as containerd sets them, then
              the image's Env (PATH defaulted if it has none), then the container's env; a name
              given again replaces the earlier value in place (the kubelet has already expanded
              $(VAR) references and resolved ConfigMaps and Secrets)
    cwd       workingDir, else the image's WorkingDir, else /
    user      securityContext runAsUser (0..2147483647, as the API validates), else runAsUsername,
              else the image's User; names and the primary group come from the image's own
              /etc/passwd and /etc/group; runAsGroup replaces the group; supplementalGroups add
    resources LinuxContainerResources → cgroup values: memory limit (and memory+swap = the same:
              no swap, as the kubelet's default NoSwap), cpu shares/quota/period, pids; values the
              kernel would refuse are refused here first, naming the field
    namespaces a new pid, mount and cgroup namespace; net, ipc and uts joined by path from the
              sandbox's pins (sandbox.py) — or the node's own for hostNetwork / hostIPC; the
              sandbox's pid namespace with shareProcessNamespace, the node's with hostPID
    mounts    the default kernel filesystems, then /etc/hostname, /etc/hosts, /etc/resolv.conf
              from the sandbox (unless the kubelet mounts its own there), then the volumes
"""

from __future__ import annotations

import dataclasses
import os

from nodeagent.cri.api import ContainerConfig, CreateContainerError, LinuxContainerResources
from runtime.errors import SpecError
from runtime.spec.model import (Capabilities, ContainerSpec, Cpu, Memory, Mount, Namespace, Pids,
                                Resources, User)

MAX_UID = 2147483647          # the API's limit for runAsUser / runAsGroup (int32, non-negative)
MIN_SHARES, MAX_SHARES = 2, 262144
MIN_QUOTA_US = 1000           # the kernel refuses a CFS quota below 1 ms
MIN_PERIOD_US, MAX_PERIOD_US = 1000, 1000000

_PROPAGATION = {"private": "rprivate", "rslave": "rslave", "rshared": "rshared"}
ETC_FILES = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")


def merge_argv(entrypoint: tuple[str, ...], cmd: tuple[str, ...], command: tuple[str, ...],
               args: tuple[str, ...]) -> tuple[str, ...]:
    """Kubernetes' command/args rule (see the module docstring)."""
    if command:
        return tuple(command) + tuple(args)
    if args:
        return tuple(entrypoint) + tuple(args)
    return tuple(entrypoint) + tuple(cmd)


def merge_env(image_env: tuple[str, ...], envs: tuple[tuple[str, str], ...],
              default_path: str) -> tuple[str, ...]:
    """The image's Env, then the container's; a later value of a name replaces the earlier one
    where it stood. PATH defaults to `default_path` when the image sets none."""
    merged: dict[str, str] = {}
    for item in image_env:
        k, _, v = item.partition("=")
        merged[k] = v
    if "PATH" not in merged:
        merged = {"PATH": default_path, **merged}
    for k, v in envs:
        if not k or "=" in k:
            raise CreateContainerError(f"env: {k!r} is not a valid variable name")
        merged[k] = v
    return tuple(f"{k}={v}" for k, v in merged.items())


def map_resources(r: LinuxContainerResources, base):
    """LinuxContainerResources → runtime.spec.model.Resources (replacing parts of `base`), and the
    process's oom_score_adj. CreateContainerError names the field whose value no kernel takes."""
    def bad(name: str, value, why: str) -> CreateContainerError:
        return CreateContainerError(f"invalid resources: {name}={value}: {why}")

    memory = cpu = pids = None
    if r.memory_limit_in_bytes is not None and r.memory_limit_in_bytes != 0:
        if r.memory_limit_in_bytes < 0:
            raise bad("memory_limit_in_bytes", r.memory_limit_in_bytes, "must not be negative")
        if r.memory_limit_in_bytes < 4096:
            raise bad("memory_limit_in_bytes", r.memory_limit_in_bytes, "is less than one page (4096)")
        memory = Memory(limit=r.memory_limit_in_bytes, swap=r.memory_limit_in_bytes)
    shares, quota, period = r.cpu_shares or None, r.cpu_quota or None, r.cpu_period or None
    if shares is not None and not MIN_SHARES <= shares <= MAX_SHARES:
        raise bad("cpu_shares", shares, f"must be {MIN_SHARES}..{MAX_SHARES}")
    if quota is not None and quota != -1 and quota < MIN_QUOTA_US:
        raise bad("cpu_quota", quota, f"must be -1 (no limit) or at least {MIN_QUOTA_US} µs")
    if period is not None and not MIN_PERIOD_US <= period <= MAX_PERIOD_US:
        raise bad("cpu_period", period, f"must be {MIN_PERIOD_US}..{MAX_PERIOD_US} µs")
    if shares or quota or period:
        cpu = Cpu(shares=shares, quota=quota, period=period if period or not quota else 100_000)
    if r.pids_limit is not None and r.pids_limit != 0:
        if r.pids_limit < -1:
            raise bad("pids_limit", r.pids_limit, "must be -1 (no limit) or positive")
        pids = Pids(r.pids_limit)
    if r.oom_score_adj is not None and not -1000 <= r.oom_score_adj <= 1000:
        raise bad("oom_score_adj", r.oom_score_adj, "must be -1000..1000")
    resources = dataclasses.replace(base, memory=memory or base.memory, cpu=cpu or base.cpu,
                                    pids=pids or base.pids)
    return resources, r.oom_score_adj


def check_id_range(name: str, value: int | None) -> None:
    if value is not None and not 0 <= value <= MAX_UID:
        raise CreateContainerError(f"securityContext.{name}: {value} must be 0..{MAX_UID}")


def resolve_user(config: ContainerConfig, image_user: str, layers_top_first: tuple[str, ...]) -> User:
    from runtime.spec.image_config import member_gids
    from runtime.spec.image_config import resolve_user as lookup

    sec = config.security
    check_id_range("runAsUser", sec.run_as_user)
    check_id_range("runAsGroup", sec.run_as_group)
    for g in sec.supplemental_groups:
        check_id_range("supplementalGroups", g)
    if sec.run_as_user is not None:
        wanted = str(sec.run_as_user)
    elif sec.run_as_username:
        wanted = sec.run_as_username
    else:
        wanted = image_user
    try:
        user = lookup(wanted, layers_top_first)
    except SpecError as e:
        raise CreateContainerError(f"user {wanted!r}: {e.problem}") from None
    gid = sec.run_as_group if sec.run_as_group is not None else user.gid
    # the user's groups in the image first, then the pod's (containerd: WithAdditionalGIDs,
    # then the supplemental groups — SupplementalGroupsPolicy Merge)
    groups = member_gids(wanted or "0", layers_top_first)   # no user at all: root's
    extra = tuple(dict.fromkeys(groups + tuple(sec.supplemental_groups)))
    return User(uid=user.uid, gid=gid, additional_gids=extra)


@dataclasses.dataclass(frozen=True)
class SandboxView:
    """What a container needs to know of its sandbox (sandbox.py's record, narrowed)."""
    namespaces: dict                     # "network"/"ipc"/"uts" → pinned path (absent: the node's)
    etc_files: dict                      # "/etc/hosts" → host path of the sandbox's file
    cgroup_parent: str                   # relative to the agent's own cgroup
    host_pid: bool = False
    hostname: str = ""                   # the pod's (the node's for hostNetwork): $HOSTNAME


@dataclasses.dataclass(frozen=True)
class Bind:
    """A host path bind-mounted into the container."""
    destination: str
    source: str
    readonly: bool = False
    propagation: str = "rprivate"


def container_spec(argv: tuple[str, ...], rootfs: str, *, layers: tuple[str, ...] = (),
                   env: tuple[str, ...] | None = None, cwd: str = "/", user: User = User(),
                   hostname: str | None = None, terminal: bool = False, readonly: bool = False,
                   capabilities: Capabilities | None = None, seccomp: bool = True,
                   no_new_privileges: bool = False, oom_score_adj: int | None = None,
                   resources: Resources | None = None, binds: tuple[Bind, ...] = (),
                   namespaces: tuple[Namespace, ...] | None = None, cgroups_path: str | None = None,
                   annotations: tuple[tuple[str, str], ...] = (), privileged: bool = False,
                   devices: tuple = ()) -> ContainerSpec:
    """The ContainerSpec for values already resolved and checked by the caller. None keeps the
    runtime's default (runtime.spec.defaults): env (just PATH), capabilities (its 14), resources
    (the default device rules), namespaces (all six new). `seccomp`: RuntimeDefault, following the
    capabilities (CAP_SYS_ADMIN opens mount, unshare, ...), or none. `privileged` comes last: it
    overrides capabilities, seccomp, masked paths and device rules (runtime.spec.defaults)."""
    from runtime.spec.defaults import default_spec
    from runtime.spec.defaults import privileged as make_privileged
    from runtime.spec.runtime_default import runtime_default_seccomp

    spec = default_spec(argv, rootfs, layers=layers, hostname=hostname, readonly=readonly,
                        terminal=terminal)
    caps = capabilities or spec.process.capabilities
    process = dataclasses.replace(spec.process, env=spec.process.env if env is None else env,
                                  cwd=cwd, user=user, capabilities=caps,
                                  no_new_privileges=no_new_privileges, oom_score_adj=oom_score_adj)
    mounts = spec.mounts + tuple(Mount(b.destination, "bind", b.source,
                                       ("rbind", b.propagation) + (("ro",) if b.readonly else ()))
                                 for b in binds)
    linux = dataclasses.replace(
        spec.linux, seccomp=runtime_default_seccomp(caps.bounding) if seccomp else None,
        resources=resources or spec.linux.resources, cgroups_path=cgroups_path,
        namespaces=spec.linux.namespaces if namespaces is None else namespaces,
        devices=tuple(devices))
    spec = dataclasses.replace(spec, process=process, mounts=mounts, linux=linux,
                               annotations=annotations)
    return make_privileged(spec) if privileged else spec


def build_spec(cid: str, config: ContainerConfig, sandbox: SandboxView, image, rootfs: str,
               host_devices: tuple = ()) -> ContainerSpec:
    """The container's OCI spec. `image`: a runtime.images ImageRecord (.config, .lowerdirs);
    `host_devices`: the host's device nodes (runtime.rootfs.devices.host_devices), which a
    privileged container gets in its /dev."""
    from runtime.spec.defaults import DEFAULT_DEVICE_RULES, DEFAULT_ENV, default_capabilities

    icfg = image.config
    layers = tuple(str(d) for d in reversed(image.lowerdirs))   # overlay wants the top first
    argv = merge_argv(icfg.entrypoint, icfg.cmd, config.command, config.args)
    if not argv:
        raise CreateContainerError(f"no command specified: image {config.image} has neither "
                                   "Entrypoint nor Cmd, and the container sets no command")
    # containerd's first entries — HOSTNAME, and TERM=xterm for a tty (WithTTY) — so that the
    # image's or the pod's own values win
    first = ((f"HOSTNAME={sandbox.hostname}",) if sandbox.hostname else ()) + \
        (("TERM=xterm",) if config.tty else ())
    env = merge_env(first + tuple(icfg.env), config.envs, DEFAULT_ENV[0].partition("=")[2])
    cwd = config.working_dir or icfg.working_dir or "/"
    if not cwd.startswith("/"):
        raise CreateContainerError(f"workingDir {cwd!r} must be an absolute path")
    user = resolve_user(config, icfg.user, layers)

    sec = config.security
    try:
        caps = default_capabilities(sec.add_capabilities, sec.drop_capabilities)
    except ValueError as e:
        raise CreateContainerError(f"securityContext.capabilities: {e}") from None
    if sec.seccomp not in ("Unconfined", "unconfined", "RuntimeDefault", "runtime/default",
                           "docker/default", ""):
        raise CreateContainerError(f"securityContext.seccompProfile {sec.seccomp!r}: only "
                                   "RuntimeDefault and Unconfined are supported")
    resources, oom_score_adj = map_resources(config.resources, Resources(devices=DEFAULT_DEVICE_RULES))

    namespaces = [Namespace("mount"), Namespace("cgroup")]
    if "pid" in sandbox.namespaces:          # shareProcessNamespace: the pause process's
        namespaces.append(Namespace("pid", sandbox.namespaces["pid"]))
    elif not sandbox.host_pid:
        namespaces.append(Namespace("pid"))
    for kind in ("network", "ipc", "uts"):
        if kind in sandbox.namespaces:
            namespaces.append(Namespace(kind, sandbox.namespaces[kind]))

    own = {m.container_path for m in config.mounts}
    binds = [Bind(dest, sandbox.etc_files[dest]) for dest in ETC_FILES
             if dest not in own and dest in sandbox.etc_files]
    for m in config.mounts:
        if not m.container_path.startswith("/"):
            raise CreateContainerError(f"mount {m.container_path!r}: the path in the container "
                                       "must be absolute")
        if not os.path.exists(m.host_path):
            raise CreateContainerError(f"mount {m.container_path}: host path {m.host_path} "
                                       "does not exist")
        if m.propagation not in _PROPAGATION:
            raise CreateContainerError(f"mount {m.container_path}: propagation {m.propagation!r}: "
                                       f"want one of {', '.join(_PROPAGATION)}")
        binds.append(Bind(m.container_path, m.host_path, m.readonly, _PROPAGATION[m.propagation]))

    return container_spec(
        argv, rootfs, layers=layers, env=env, cwd=cwd, user=user,
        hostname=None,   # the sandbox's uts namespace already has it
        terminal=config.tty, readonly=sec.readonly_rootfs, capabilities=caps,
        seccomp=sec.seccomp not in ("Unconfined", "unconfined"), no_new_privileges=sec.no_new_privs,
        oom_score_adj=oom_score_adj, resources=resources, binds=tuple(binds),
        namespaces=tuple(namespaces), cgroups_path=f"{sandbox.cgroup_parent}/{cid}",
        annotations=tuple(sorted(config.annotations.items())), privileged=sec.privileged,
        devices=host_devices if sec.privileged else ())
