"""What a container gets when nobody asks for anything else: the defaults of Docker and Kubernetes.

These are the values containerd's CRI plugin and Docker put into config.json for an ordinary,
unprivileged container. Each list is a lesson in what a container must not be able to do:

- DEFAULT_CAPABILITIES: 14 of the ~41 capabilities. Enough to run as "root" inside (chown files,
  bind port 80, switch users) but not to administer the machine (no CAP_SYS_ADMIN: no mount, no
  namespaces; no CAP_NET_ADMIN: no touching routes; no CAP_SYS_PTRACE, CAP_SYS_MODULE, ...).
  In the effective, permitted and bounding sets; the inheritable and ambient sets stay empty: a
  non-empty inheritable set let file capabilities leak into unprivileged programs (CVE-2022-24769).
- DEFAULT_MASKED_PATHS: files that would leak the host's secrets or let a container poke at
  hardware (/proc/kcore is the host's memory); masked by /dev/null (files) or an empty read-only
  tmpfs (directories).
- DEFAULT_READONLY_PATHS: kernel knobs under /proc that are global, not per-namespace.
- DEFAULT_DEVICE_RULES: the device cgroup allow-list. CAP_MKNOD lets a container *create* a node
  for /dev/sda; this list is what stops it from *opening* it.
"""

from __future__ import annotations

from runtime.spec.model import (Capabilities, ContainerSpec, DeviceRule, Linux, Mount, Namespace,
                                Process, Resources, Root, User)

DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

DEFAULT_MASKED_PATHS: tuple[str, ...] = (
    "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
    "/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware",
)

DEFAULT_READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)

DEFAULT_NAMESPACES: tuple[str, ...] = ("pid", "network", "ipc", "uts", "mount", "cgroup")

DEFAULT_ENV: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)


def default_mounts() -> tuple[Mount, ...]:
    """The kernel filesystems every container gets, in the order they must be mounted."""
    return (
        Mount("/proc", "proc", "proc", ("nosuid", "noexec", "nodev")),
        Mount("/dev", "tmpfs", "tmpfs", ("nosuid", "strictatime", "mode=755", "size=65536k")),
        Mount("/dev/pts", "devpts", "devpts",
              ("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5")),
        Mount("/dev/shm", "tmpfs", "shm", ("nosuid", "noexec", "nodev", "mode=1777", "size=65536k")),
        Mount("/dev/mqueue", "mqueue", "mqueue", ("nosuid", "noexec", "nodev")),
        Mount("/sys", "sysfs", "sysfs", ("nosuid", "noexec", "nodev", "ro")),
        Mount("/sys/fs/cgroup", "cgroup", "cgroup", ("nosuid", "noexec", "nodev", "relatime", "ro")),
    )


# (type, major, minor, access): the nodes of the default /dev, plus the pty slaves (136:*).
DEFAULT_DEVICE_RULES: tuple[DeviceRule, ...] = (
    DeviceRule(False, "a", None, None, "rwm"),                  # deny everything, then allow:
    DeviceRule(True, "c", None, None, "m"),                     # mknod of any char device ...
    DeviceRule(True, "b", None, None, "m"),                     # ... or block device, but no access
    DeviceRule(True, "c", 1, 3, "rwm"),                         # /dev/null
    DeviceRule(True, "c", 1, 5, "rwm"),                         # /dev/zero
    DeviceRule(True, "c", 1, 7, "rwm"),                         # /dev/full
    DeviceRule(True, "c", 1, 8, "rwm"),                         # /dev/random
    DeviceRule(True, "c", 1, 9, "rwm"),                         # /dev/urandom
    DeviceRule(True, "c", 5, 0, "rwm"),                         # /dev/tty
    DeviceRule(True, "c", 5, 2, "rwm"),                         # /dev/ptmx
    DeviceRule(True, "c", 136, None, "rwm"),                    # /dev/pts/N
)


def default_capabilities(add: tuple[str, ...] = (), drop: tuple[str, ...] = ()) -> Capabilities:
    """The 14 defaults, with `add` and `drop` applied ("ALL" drops or adds everything)."""
    from runtime.sys.consts import CAPABILITIES

    def norm(name: str) -> str:
        name = name.upper()
        return name if name.startswith("CAP_") or name == "ALL" else "CAP_" + name

    caps = list(DEFAULT_CAPABILITIES)
    for name in map(norm, drop):
        caps = [] if name == "ALL" else [c for c in caps if c != name]
    for name in map(norm, add):
        if name == "ALL":
            caps = sorted(CAPABILITIES, key=CAPABILITIES.__getitem__)
        elif name not in CAPABILITIES:
            raise ValueError(f"unknown capability {name!r}")
        elif name not in caps:
            caps.append(name)
    unknown = [n for n in map(norm, drop) if n != "ALL" and n not in CAPABILITIES]
    if unknown:
        raise ValueError(f"unknown capability {unknown[0]!r}")
    c = tuple(caps)
    return Capabilities(bounding=c, effective=c, permitted=c)


def default_spec(args: tuple[str, ...], rootfs: str, *, layers: tuple[str, ...] = (),
                 env: tuple[str, ...] = (), hostname: str | None = None,
                 readonly: bool = False, terminal: bool = False) -> ContainerSpec:
    """An unprivileged container running `args`, with every default above and RuntimeDefault
    seccomp. Callers replace parts with dataclasses.replace()."""
    from runtime.spec.runtime_default import runtime_default_seccomp

    caps = default_capabilities()
    process = Process(
        args=args, env=DEFAULT_ENV + env, cwd="/", user=User(), capabilities=caps,
        terminal=terminal,  # no rlimits: the container inherits the runtime's, as under containerd
    )
    linux = Linux(
        namespaces=tuple(Namespace(t) for t in DEFAULT_NAMESPACES),
        resources=Resources(devices=DEFAULT_DEVICE_RULES),
        masked_paths=DEFAULT_MASKED_PATHS,
        readonly_paths=DEFAULT_READONLY_PATHS,
        seccomp=runtime_default_seccomp(caps.bounding),
    )
    return ContainerSpec(process=process, root=Root(rootfs, readonly, layers), hostname=hostname,
                         mounts=default_mounts(), linux=linux)


def privileged(spec: ContainerSpec) -> ContainerSpec:
    """What `--privileged` means (as in Docker): every capability *we* hold in every set but
    ambient, no seccomp filter, nothing masked or read-only under /proc, /sys writable, and every
    device allowed by the device cgroup. Namespaces and the cgroup remain: it is still a container,
    but its root can administer the machine. (A process can never grant capabilities it does not
    have itself: on these machines the runtime lacks CAP_SYS_RESOURCE, so privileged ones do too.)"""
    import dataclasses

    from runtime.sys.caps import names_of

    with open("/proc/self/status") as f:
        ours = next(int(line.split()[1], 16) for line in f if line.startswith("CapPrm:"))
    every = tuple(names_of(ours))
    caps = Capabilities(bounding=every, effective=every, permitted=every, inheritable=every)
    mounts = tuple(dataclasses.replace(m, options=tuple(o for o in m.options if o != "ro"))
                   if m.destination in ("/sys", "/sys/fs/cgroup") else m for m in spec.mounts)
    linux = dataclasses.replace(spec.linux, seccomp=None, masked_paths=(), readonly_paths=(),
                                resources=dataclasses.replace(
                                    spec.linux.resources, devices=(DeviceRule(True, "a", None, None, "rwm"),)))
    return dataclasses.replace(spec, mounts=mounts, linux=linux,
                               process=dataclasses.replace(spec.process, capabilities=caps))
