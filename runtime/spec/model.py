"""The container spec: frozen dataclasses shaped like the OCI runtime spec (config.json).

One dataclass per object of the OCI runtime spec (github.com/opencontainers/runtime-spec,
config.md and config-linux.md), with the same field names in snake_case, so that a student can hold
config.json next to this file. Only what this runtime implements is here; bundle.py refuses the
rest with an error naming the field, rather than silently ignoring it.

Everything is immutable (frozen, tuples instead of lists): a spec is a value that is checked once
(bundle.py, or the code that builds it) and then handed to the create pipeline, the container's
init process and the supervisor, none of which may change it.

One extension, for overlay root filesystems: `Root.layers`. OCI leaves "how the rootfs got there"
to the caller (containerd mounts an overlay and hands runc the mount point). We can do that step
ourselves: with `layers` set, the runtime mounts an overlay of those directories (the image's
layers, topmost first) plus a per-container upper/work directory at `Root.path`. In config.json it
travels as the annotation `org.nodeagent.rootfs.layers` (colon-separated), which runc ignores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Namespace types as config.json names them, and their /proc/<pid>/ns/<name> file names.
NAMESPACE_TYPES: dict[str, str] = {
    "pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
    "cgroup": "cgroup", "user": "user", "time": "time",
}

LAYERS_ANNOTATION = "org.nodeagent.rootfs.layers"


# User and group IDs a container may be given: 0 to 2^31-1, runc's rule. The kernel's IDs are
# 32-bit, and (uid_t)-1 = 4294967295 is not a user at all: to setresuid/setresgid/chown it means
# "leave this one unchanged" — so a container asking for uid -1 or 4294967295 would simply stay
# root, with every capability. Anything at or above 2^31 also turns negative in C's signed int
# and in some tools' parsers. Every edge where an ID enters (config.json, CLI flags, an image's
# User, its /etc/passwd and /etc/group, an exec request) checks with `check_id`, naming its own
# field; User refuses one as a last line of defence.
MAX_ID = 2**31 - 1


def id_problem(value: object, kind: str = "uid") -> str | None:
    """Why `value` cannot be a `kind` ("uid" or "gid"), or None if it can."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{value!r} is not a {kind} (give a number from 0 to {MAX_ID})"
    if not 0 <= value <= MAX_ID:
        note = " (to the kernel, -1 = 4294967295 means 'unchanged': it would stay root)" \
            if value in (-1, 2**32 - 1) else ""
        return f"{value} is not a valid {kind}: it must be from 0 to {MAX_ID}{note}"
    return None


@dataclass(frozen=True)
class User:
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    umask: int | None = None

    def __post_init__(self):
        for name, value, kind in (("uid", self.uid, "uid"), ("gid", self.gid, "gid"),
                                  *(("additional_gids", g, "gid") for g in self.additional_gids)):
            problem = id_problem(value, kind)
            if problem is not None:
                from runtime.errors import SpecError
                raise SpecError(f"user.{name}", problem)


@dataclass(frozen=True)
class Capabilities:
    """Capability names ("CAP_CHOWN") for each of the five sets of the container's first process."""

    bounding: tuple[str, ...] = ()
    effective: tuple[str, ...] = ()
    permitted: tuple[str, ...] = ()
    inheritable: tuple[str, ...] = ()
    ambient: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rlimit:
    type: str      # "RLIMIT_NOFILE"
    soft: int      # -1: unlimited (config.json writes 2**64-1)
    hard: int


@dataclass(frozen=True)
class Process:
    args: tuple[str, ...]
    env: tuple[str, ...] = ()          # "KEY=value"
    cwd: str = "/"
    user: User = field(default_factory=User)
    capabilities: Capabilities = field(default_factory=Capabilities)
    rlimits: tuple[Rlimit, ...] = ()
    no_new_privileges: bool = False
    terminal: bool = False
    oom_score_adj: int | None = None

    def env_value(self, key: str) -> str | None:
        for item in reversed(self.env):
            k, _, v = item.partition("=")
            if k == key:
                return v
        return None


@dataclass(frozen=True)
class Root:
    path: str                          # absolute (bundle.py resolves it against the bundle dir)
    readonly: bool = False
    layers: tuple[str, ...] = ()       # overlay lowerdirs, topmost first; empty: use `path` as is


@dataclass(frozen=True)
class Mount:
    destination: str
    type: str | None = None
    source: str | None = None
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Namespace:
    type: str                          # a key of NAMESPACE_TYPES
    path: str | None = None            # join this namespace (e.g. /proc/<pid>/ns/net) instead of a new one


@dataclass(frozen=True)
class Memory:
    limit: int | None = None           # bytes; memory.max / memory.limit_in_bytes
    reservation: int | None = None     # bytes; memory.low / memory.soft_limit_in_bytes
    swap: int | None = None            # OCI: memory *plus* swap, as v1's memsw; -1 unlimited
    kernel: int | None = None          # v1 memory.kmem.limit_in_bytes (gone from newer kernels)
    kernel_tcp: int | None = None      # v1 memory.kmem.tcp.limit_in_bytes
    swappiness: int | None = None      # v1 memory.swappiness, 0..100
    disable_oom_killer: bool | None = None  # v1 memory.oom_control: pause instead of killing


@dataclass(frozen=True)
class Cpu:
    shares: int | None = None          # v1 cpu.shares (2..262144); v2 cpu.weight by conversion
    quota: int | None = None           # microseconds per period; -1 unlimited
    period: int | None = None          # microseconds
    cpus: str | None = None            # cpuset.cpus, e.g. "0-1"
    mems: str | None = None            # cpuset.mems, e.g. "0"
    realtime_runtime: int | None = None  # v1 cpu.rt_runtime_us
    realtime_period: int | None = None   # v1 cpu.rt_period_us


@dataclass(frozen=True)
class Pids:
    limit: int                          # -1 or 0: unlimited


@dataclass(frozen=True)
class BlockIO:
    weight: int | None = None          # 10..1000 (OCI); v2 io.weight by conversion


@dataclass(frozen=True)
class HugepageLimit:
    page_size: str                     # "2MB", "1GB": the size in the hugetlb file names
    limit: int                         # bytes


@dataclass(frozen=True)
class Network:
    class_id: int | None = None        # net_cls.classid
    priorities: tuple[tuple[str, int], ...] = ()   # net_prio.ifpriomap: (interface, priority)


@dataclass(frozen=True)
class DeviceRule:
    """A device cgroup rule: allow or deny access ("rwm") to a type/major/minor (None: any)."""

    allow: bool
    type: str = "a"                    # a(ll), c(har), b(lock)
    major: int | None = None
    minor: int | None = None
    access: str = "rwm"


@dataclass(frozen=True)
class Resources:
    memory: Memory | None = None
    cpu: Cpu | None = None
    pids: Pids | None = None
    block_io: BlockIO | None = None
    devices: tuple[DeviceRule, ...] = ()
    hugepage_limits: tuple[HugepageLimit, ...] = ()
    network: Network | None = None


@dataclass(frozen=True)
class SeccompArg:
    index: int
    op: str                            # "SCMP_CMP_MASKED_EQ"
    value: int
    value_two: int = 0


@dataclass(frozen=True)
class SeccompRule:
    names: tuple[str, ...]
    action: str                        # "SCMP_ACT_ALLOW"
    errno_ret: int | None = None
    args: tuple[SeccompArg, ...] = ()


@dataclass(frozen=True)
class Seccomp:
    default_action: str
    default_errno_ret: int | None = None
    architectures: tuple[str, ...] = ()
    syscalls: tuple[SeccompRule, ...] = ()


@dataclass(frozen=True)
class Device:
    """A device node to create in the container's /dev (beyond the default ones)."""

    path: str
    type: str                          # "c", "u" (both character), "b" or "p" (a FIFO)
    major: int
    minor: int
    file_mode: int = 0o666
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class IDMapping:
    """One line of a user namespace's uid_map or gid_map: `size` ids from `container_id` inside
    are `host_id`... outside."""

    container_id: int
    host_id: int
    size: int


@dataclass(frozen=True)
class Linux:
    namespaces: tuple[Namespace, ...] = ()
    resources: Resources = field(default_factory=Resources)
    cgroups_path: str | None = None
    masked_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    seccomp: Seccomp | None = None
    sysctl: tuple[tuple[str, str], ...] = ()
    devices: tuple[Device, ...] = ()
    rootfs_propagation: str | None = None
    uid_mappings: tuple[IDMapping, ...] = ()
    gid_mappings: tuple[IDMapping, ...] = ()

    def namespace(self, type_: str) -> Namespace | None:
        return next((n for n in self.namespaces if n.type == type_), None)


@dataclass(frozen=True)
class Hook:
    """A program the runtime runs at a point of the container's life (runtime/process/hooks.py)."""

    path: str                          # absolute; the executable
    args: tuple[str, ...] = ()         # argv, argv[0] included (empty: just the path)
    env: tuple[str, ...] = ()          # KEY=value, the hook's whole environment
    timeout: int | None = None         # seconds; the hook is killed and fails after it


@dataclass(frozen=True)
class Hooks:
    prestart: tuple[Hook, ...] = ()          # deprecated by the spec; run with createRuntime
    create_runtime: tuple[Hook, ...] = ()    # create, runtime namespace, before pivot_root
    create_container: tuple[Hook, ...] = ()  # create, container namespace, before pivot_root
    start_container: tuple[Hook, ...] = ()   # start, container namespace, before the program
    poststart: tuple[Hook, ...] = ()         # start, runtime namespace, after the program runs
    poststop: tuple[Hook, ...] = ()          # delete, runtime namespace, after the container went

    FIELDS = (("prestart", "prestart"), ("createRuntime", "create_runtime"),
              ("createContainer", "create_container"), ("startContainer", "start_container"),
              ("poststart", "poststart"), ("poststop", "poststop"))


@dataclass(frozen=True)
class ContainerSpec:
    process: Process
    root: Root
    hostname: str | None = None
    mounts: tuple[Mount, ...] = ()
    linux: Linux = field(default_factory=Linux)
    annotations: tuple[tuple[str, str], ...] = ()
    oci_version: str = "1.0.2"
    hooks: Hooks = field(default_factory=Hooks)

    def annotation(self, key: str) -> str | None:
        return dict(self.annotations).get(key)
