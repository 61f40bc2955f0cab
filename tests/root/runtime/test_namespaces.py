"""Joining namespaces by path (how a pod's containers share a sandbox's net/ipc/uts), and sysctls
that belong to the container's own namespaces."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from runtime.spec.bundle import write_bundle
from runtime.spec.defaults import default_spec
from runtime.spec.model import Namespace


def _bundle(rt, name: str, spec) -> Path:
    d = rt.base / name
    d.mkdir()
    write_bundle(spec, str(d))
    return d


def test_a_second_container_joins_the_first_ones_net_ipc_and_uts(rt):
    sandbox = rt.name("sandbox")
    assert rt.runtime("run", "-d", "-b", str(rt.bundle(["sleep", "30"])), sandbox).returncode == 0
    pid = json.loads((rt.root / sandbox / "state.json").read_text())["pid"]
    base = default_spec(("sh", "-c", "hostname; for n in net ipc uts mnt pid; do readlink /proc/self/ns/$n; done"),
                        str(rt.rootfs), readonly=True)
    joined = tuple(Namespace(n.type, f"/proc/{pid}/ns/{ {'network': 'net'}.get(n.type, n.type) }")
                   if n.type in ("network", "ipc", "uts") else n for n in base.linux.namespaces)
    spec = dataclasses.replace(base, hostname=None,
                               linux=dataclasses.replace(base.linux, namespaces=joined))
    out = rt.runtime("run", "-b", str(_bundle(rt, "member", spec)), rt.name("member"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "bundled"                         # the sandbox's hostname: same uts namespace
    for ns, seen in zip(("net", "ipc", "uts"), lines[1:4]):
        assert seen == Path(f"/proc/{pid}/ns/{ns}").readlink().name, ns
    for ns, seen in zip(("mnt", "pid"), lines[4:6]):
        assert seen != Path(f"/proc/{pid}/ns/{ns}").readlink().name, ns   # its own


def test_namespaced_sysctls_are_set_inside_only(rt):
    base = default_spec(("cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/shmmni"),
                        str(rt.rootfs), readonly=True)
    spec = dataclasses.replace(base, linux=dataclasses.replace(
        base.linux, sysctl=(("kernel.shmmni", "1234"), ("net.ipv4.ip_forward", "1"))))
    host_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    out = rt.runtime("run", "-b", str(_bundle(rt, "sysctl", spec)), rt.name())
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "1234"]
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host_forward


def test_a_host_wide_sysctl_is_refused_before_anything_is_made(rt):
    base = default_spec(("true",), str(rt.rootfs), readonly=True)
    spec = dataclasses.replace(base, linux=dataclasses.replace(base.linux, sysctl=(("vm.swappiness", "1"),)))
    cid = rt.name()
    out = rt.runtime("run", "-b", str(_bundle(rt, "bad-sysctl", spec)), cid)
    assert out.returncode == 1
    assert "linux.sysctl.vm.swappiness: is not namespaced" in out.stderr
    assert not (rt.root / cid).exists()


_V2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()


def test_explain_prints_each_step_with_its_shell_command(rt):
    out = rt.run("--rm", "--explain", "--memory", "64Mi", str(rt.rootfs), "true")
    assert out.returncode == 0, out.stderr
    err = out.stderr
    for expected in ("unshare --mount --uts --ipc --net", "unshare --cgroup",
                     "mount -t proc -o nosuid,nodev,noexec proc",
                     "mount -t overlay -o lowerdir=", "pivot_root . .", "umount -l .",
                     "mknod -m 666", "capsh --caps=", "PR_SET_SECCOMP", "exec true",
                     "echo 67108864 > /sys/fs/cgroup/",
                     # v1: the init moves itself (tasks); v2: the supervisor moves it (cgroup.procs)
                     "cgroup.procs" if _V2 else "echo 0 > /sys/fs/cgroup/memory/"):
        assert expected in err, expected
    steps = [line for line in err.splitlines() if line.startswith("[")]
    order = [next(i for i, s in enumerate(steps) if key in s) for key in
             ("create the cgroup", "create namespaces", "mount /proc", "pivot_root",
              "create the cgroup namespace", "mount /sys/fs/cgroup", "mask paths",
              "set capabilities", "created: waiting", "start:")]
    assert order == sorted(order)
