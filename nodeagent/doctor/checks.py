"""The doctor's checks. Each takes the DoctorEnv and returns Findings; none raises for a host problem.

A Finding is required or not. A required one that fails makes the node unusable (exit status 1);
anything else that is not right is a warning: the agent can still run, but something (VXLAN mode,
Service traffic on a bridge, plenty of images) will not work or not well until the fix is applied.
"""

from __future__ import annotations

import enum
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from network.sysctl import NODE_SYSCTLS, read_sysctl
from runtime.cgroups.layout import CgroupLayout, CgroupMode, detect
from runtime.cgroups.probe import ControllerProbe, probe
from runtime.kernel import Availability, HostPaths, Kernel


class Verdict(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Finding:
    check: str
    verdict: Verdict
    detail: str
    fix: str = ""
    required: bool = True
    data: dict = field(default_factory=dict)


# Binaries the node runs. `ip` for humans and the Vagrant scripts; `nft` because nftables rules are
# loaded through `nft -j -f -`, as kube-proxy's knftables does (there are no Python bindings on PyPI).
REQUIRED_BINARIES = {"nft": "nftables", "ip": "iproute2"}
# Binaries live in sbin, which a non-root PATH often lacks.
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")

REQUIRED_NAMESPACES = ("mnt", "uts", "ipc", "pid", "net", "cgroup")
REQUIRED_CONTROLLERS = ("cpu", "memory", "pids")
# Wanted, not required: io limits (blkio in v1), freezer for v1's "stop everything in this cgroup"
# (v2 has cgroup.freeze/cgroup.kill built in), cpuset for pinning.
OPTIONAL_CONTROLLERS = {"v1": ("cpuacct", "blkio", "freezer", "cpuset", "devices"),
                        "v2": ("io", "cpuset")}

GIB = 1 << 30
DISK_FAIL_BELOW = 1 * GIB
DISK_WARN_BELOW = 5 * GIB


def _which(name: str) -> str | None:
    path = os.environ.get("PATH", "") + os.pathsep + os.pathsep.join(_SBIN)
    return shutil.which(name, path=path)


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=10)


def _free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@dataclass(frozen=True)
class DoctorEnv:
    """Everything the checks look at. The defaults are this host; tests substitute fakes."""

    paths: HostPaths = HostPaths()
    euid: int = field(default_factory=os.geteuid)
    python: tuple[int, int, int] = tuple(sys.version_info[:3])  # type: ignore[assignment]
    state_dir: Path = Path("/var/lib/nodeagent")
    which: Callable[[str], str | None] = _which
    run: Callable[[list[str]], subprocess.CompletedProcess] = _run
    cgroup_probe: Callable[[CgroupLayout], dict[str, ControllerProbe]] = probe
    free_bytes: Callable[[Path], int] = _free_bytes


def check_python(env: DoctorEnv) -> list[Finding]:
    version = ".".join(map(str, env.python))
    if env.python >= (3, 11):
        return [Finding("python", Verdict.OK, f"Python {version}")]
    return [Finding("python", Verdict.FAIL, f"Python {version}; nodeagent needs >= 3.11",
                    "install python3 >= 3.11 (Debian 12 and Ubuntu 24.04 have it)")]


def check_privileges(env: DoctorEnv) -> list[Finding]:
    if env.euid == 0:
        return [Finding("privileges", Verdict.OK, "running as root")]
    return [Finding("privileges", Verdict.FAIL,
                    f"running as uid {env.euid}; namespaces, mounts and cgroups need root",
                    "run as root: sudo nodeagent doctor")]


def check_namespaces(kernel: Kernel) -> list[Finding]:
    ns = kernel.namespaces()
    missing = [n for n in REQUIRED_NAMESPACES if not ns.get(n)]
    have = " ".join(n for n, ok in ns.items() if ok)
    if missing:
        return [Finding("namespaces", Verdict.FAIL, f"missing or disabled: {' '.join(missing)}",
                        "use a kernel with CONFIG_NAMESPACES and these namespace types; check "
                        "/proc/sys/user/max_<type>_namespaces is not 0", data={"usable": have.split()})]
    return [Finding("namespaces", Verdict.OK, have, data={"usable": have.split()})]


def _feature_finding(kernel: Kernel, check: str, name: str, symbol: str, required: bool,
                     fix: str, filesystem: str | None = None) -> Finding:
    f = kernel.feature(name, symbol, filesystem=filesystem)
    data = {"availability": f.availability.name.lower(), "source": f.source}
    if f.availability.present:
        return Finding(check, Verdict.OK, f"{f.availability.value} ({f.source})", required=required,
                       data=data)
    verdict = Verdict.FAIL if required else Verdict.WARN
    if f.availability is Availability.UNKNOWN:
        verdict = Verdict.WARN  # we could not tell; the first use will
    return Finding(check, verdict, f"{f.availability.value}: {f.source}", fix, required, data)


def check_kernel_features(kernel: Kernel) -> list[Finding]:
    return [
        _feature_finding(kernel, "overlayfs", "overlay", "CONFIG_OVERLAY_FS", True,
                         "modprobe overlay (or a kernel with CONFIG_OVERLAY_FS)", filesystem="overlay"),
        _feature_finding(kernel, "veth", "veth", "CONFIG_VETH", True,
                         "modprobe veth (or a kernel with CONFIG_VETH)"),
        _feature_finding(kernel, "bridge", "bridge", "CONFIG_BRIDGE", True,
                         "modprobe bridge (or a kernel with CONFIG_BRIDGE)"),
        _feature_finding(kernel, "vxlan", "vxlan", "CONFIG_VXLAN", False,
                         "modprobe vxlan; needed only for the VXLAN cross-node mode"),
    ]


def check_nftables(env: DoctorEnv, kernel: Kernel) -> list[Finding]:
    f = kernel.feature("nf_tables", "CONFIG_NF_TABLES")
    if not f.availability.present and f.availability is not Availability.UNKNOWN:
        return [Finding("nftables", Verdict.FAIL, f"kernel nf_tables {f.availability.value}",
                        "use a kernel with CONFIG_NF_TABLES (Debian's has it)")]
    nft = env.which("nft")
    if nft is None:
        return [Finding("nftables", Verdict.FAIL, "kernel ok, but no nft binary",
                        "apt-get install nftables")]
    # A read-only request through the same JSON interface the agent uses proves kernel and binary
    # agree (a kernel without nf_tables answers "Protocol not supported").
    try:
        res = env.run([nft, "-j", "list", "tables"])
    except (OSError, subprocess.TimeoutExpired) as e:
        return [Finding("nftables", Verdict.FAIL, f"{nft} -j list tables: {e}", "apt-get install nftables")]
    if res.returncode != 0:
        err = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
        fix = "run as root" if env.euid != 0 else "modprobe nf_tables"
        return [Finding("nftables", Verdict.FAIL, f"nft -j list tables failed: {err[0]}", fix)]
    return [Finding("nftables", Verdict.OK, f"{f.availability.value}; {nft} answers in JSON")]


def check_cgroups(env: DoctorEnv) -> list[Finding]:
    try:
        layout = detect(env.paths)
    except OSError as e:
        return [Finding("cgroup mode", Verdict.FAIL, f"cannot read {e.filename}: {e.strerror}",
                        "mount /proc")]
    if layout.mode is CgroupMode.NONE:
        return [Finding("cgroup mode", Verdict.FAIL, "no cgroup filesystem mounted",
                        "mount -t cgroup2 none /sys/fs/cgroup", data={"mode": "none"})]
    probes = env.cgroup_probe(layout)
    # In hybrid mode the controllers we use are the v1 ones; the cgroup2 mount carries few or none.
    limits_version = "v2" if layout.mode is CgroupMode.V2 else "v1"
    usable = {v: sorted(c for c, p in probes.items() if p.usable and p.version == int(v[1]))
              for v in ("v1", "v2")}
    mode_note = {CgroupMode.V2: "unified", CgroupMode.HYBRID: "limits go through the v1 hierarchies",
                 CgroupMode.V1: "no cgroup2 mount"}
    findings = [Finding("cgroup mode", Verdict.OK,
                        f"{layout.mode.value} ({mode_note[layout.mode]}); {layout.describe()}",
                        data={"mode": layout.mode.value, "limits_through": limits_version,
                              "usable": usable[limits_version], **usable})]
    for c in REQUIRED_CONTROLLERS + OPTIONAL_CONTROLLERS[limits_version]:
        required = c in REQUIRED_CONTROLLERS
        p = probes.get(c)
        # In hybrid mode only count a controller that lives in the hierarchy version we use.
        if p is not None and p.version != int(limits_version[1]):
            p = None
        if p is not None and p.usable:
            findings.append(Finding(f"cgroup {c}", Verdict.OK, f"{limits_version}: {p.detail}",
                                    required=required))
            continue
        detail = p.detail if p is not None else f"no {limits_version} {c} controller"
        fix = ("run as root" if env.euid != 0 else
               "enable it in the parent's cgroup.subtree_control (systemd: Delegate=yes)"
               if limits_version == "v2" else f"mount the v1 {c} hierarchy")
        findings.append(Finding(f"cgroup {c}", Verdict.FAIL if required else Verdict.WARN,
                                detail, fix, required))
    return findings


def check_sysctls(env: DoctorEnv) -> list[Finding]:
    findings = []
    for s in NODE_SYSCTLS:
        value = read_sysctl(s.name, env.paths.proc)
        if value == s.want:
            findings.append(Finding(s.name, Verdict.OK, f"= {value}", required=False))
        else:
            shown = "absent (br_netfilter not loaded)" if value is None else f"= {value}"
            findings.append(Finding(s.name, Verdict.WARN, f"{shown}; want {s.want}: {s.why}",
                                    s.fix, required=False))
    return findings


def check_binaries(env: DoctorEnv) -> list[Finding]:
    findings = []
    for name, package in REQUIRED_BINARIES.items():
        path = env.which(name)
        if path:
            findings.append(Finding(f"binary {name}", Verdict.OK, path))
        else:
            findings.append(Finding(f"binary {name}", Verdict.FAIL, "not found on PATH or in sbin",
                                    f"apt-get install {package}"))
    return findings


def check_disk(env: DoctorEnv) -> list[Finding]:
    where = env.state_dir
    while not where.exists() and where != where.parent:
        where = where.parent
    free = env.free_bytes(where)
    detail = f"{free / GIB:.1f} GiB free at {where} (for {env.state_dir}: images, containers)"
    data = {"free_bytes": free, "path": str(where)}
    if free < DISK_FAIL_BELOW:
        return [Finding("disk", Verdict.FAIL, detail, f"free space on {where} (>= 1 GiB needed)",
                        data=data)]
    if free < DISK_WARN_BELOW:
        return [Finding("disk", Verdict.WARN, detail, f"free space on {where}; images need room",
                        data=data)]
    return [Finding("disk", Verdict.OK, detail, data=data)]


def run_checks(env: DoctorEnv = DoctorEnv()) -> list[Finding]:
    kernel = Kernel(env.paths)
    return [
        *check_python(env),
        *check_privileges(env),
        *check_namespaces(kernel),
        *check_kernel_features(kernel),
        *check_cgroups(env),
        *check_nftables(env, kernel),
        *check_sysctls(env),
        *check_binaries(env),
        *check_disk(env),
    ]
