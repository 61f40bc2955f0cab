"""Confinement and hostile images: capabilities add/drop/privileged, no_new_privs, users, the
device cgroup, symlinks planted in the image, and the one-line errors users meet."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from runtime.spec.bundle import write_bundle
from runtime.spec.defaults import default_spec
from runtime.spec.model import Mount


def _layered_bundle(rt, top: Path, args: list[str], **changes) -> Path:
    """A bundle whose root is an overlay of `top` over the busybox tree (the annotation way)."""
    d = rt.base / f"lb-{top.name}"
    d.mkdir()
    spec = default_spec(tuple(args), str(d / "rootfs"), layers=(str(top), str(rt.rootfs)),
                        hostname="layered")
    if "linux" in changes:
        changes["linux"] = dataclasses.replace(spec.linux, **changes["linux"])
    write_bundle(dataclasses.replace(spec, **changes), str(d))
    return d


def _status(out: str, key: str) -> str:
    return next(line.split()[-1] for line in out.splitlines() if line.startswith(key + ":"))


def test_cap_drop_and_cap_add_change_the_sets_and_the_seccomp_profile(rt):
    out = rt.run("--rm", "--cap-drop", "NET_RAW", str(rt.rootfs), "grep", "CapEff", "/proc/self/status")
    assert _status(out.stdout, "CapEff") == f"{0xa80425fb & ~(1 << 13):016x}"
    out = rt.run("--rm", "--cap-add", "SYS_ADMIN", str(rt.rootfs), "sh", "-c",
                 "grep CapEff /proc/self/status; mount -t tmpfs t /tmp && echo mounted")
    assert _status(out.stdout, "CapEff") == f"{0xa80425fb | 1 << 21:016x}"
    assert "mounted" in out.stdout                 # seccomp lets mount through with CAP_SYS_ADMIN
    out = rt.run("--rm", "--cap-add", "CAP_FOO", str(rt.rootfs), "true")
    assert out.returncode == 125
    assert out.stderr.strip() == "nodeagent run: --cap-add/--cap-drop: unknown capability 'CAP_FOO'"


def test_privileged_has_every_capability_we_hold_and_no_seccomp(rt):
    ours = next(l.split()[1] for l in open("/proc/self/status") if l.startswith("CapPrm:"))
    out = rt.run("--rm", "--privileged", str(rt.rootfs), "sh", "-c",
                 "grep -E 'CapEff|Seccomp:' /proc/self/status; ls /sys/firmware | wc -l")
    assert _status(out.stdout, "CapEff") == ours
    assert _status(out.stdout, "Seccomp") == "0"
    assert out.stdout.splitlines()[-1] != "0"       # /sys/firmware is no longer masked


def test_no_new_privs_and_user_from_the_bundle(rt):
    from runtime.spec.model import User
    base = default_spec(("sh", "-c", "id; grep -E 'NoNewPrivs|CapEff' /proc/self/status"),
                        str(rt.rootfs), readonly=True)
    spec = dataclasses.replace(base, process=dataclasses.replace(
        base.process, no_new_privileges=True, user=User(65534, 65534, (1000,))))
    d = rt.base / "nnp"
    d.mkdir()
    write_bundle(spec, str(d))
    out = rt.runtime("run", "-b", str(d), rt.name())
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "uid=65534(nobody) gid=65534(nogroup) groups=1000"
    assert _status(out.stdout, "NoNewPrivs") == "1"
    assert _status(out.stdout, "CapEff") == "0000000000000000"   # non-root: execve cleared them


@pytest.mark.vm
def test_the_device_cgroup_stops_a_node_made_with_cap_mknod(rt):
    # v1: devices.deny/devices.allow; v2 (the VM): the generated eBPF program.
    out = rt.run("--rm", str(rt.rootfs), "sh", "-c",
                 "mknod /tmp/disk b 7 0 && echo made; head -c1 /tmp/disk 2>&1; "
                 "mknod /tmp/mem c 1 1 && head -c1 /tmp/mem 2>&1")
    assert out.stdout.splitlines()[0] == "made"      # CAP_MKNOD: creating is allowed ...
    assert out.stdout.count("Operation not permitted") == 2   # ... opening is not


def test_a_proc_symlink_planted_in_the_image_is_refused(rt):
    evil = rt.base / "evil-proc"
    evil.mkdir()
    os.symlink("/tmp", evil / "proc")
    cid = rt.name()
    out = rt.runtime("run", "-b", str(_layered_bundle(rt, evil, ["true"])), cid)
    assert out.returncode == 1
    assert "mount /proc (proc): refused: /proc in the root filesystem is a symlink to '/tmp'" in out.stderr
    assert not (rt.root / cid).exists()


def test_masking_through_a_symlink_is_refused(rt):
    evil = rt.base / "evil-mask"
    (evil / "etc").mkdir(parents=True)
    os.symlink("/etc/passwd", evil / "etc/secret")
    from runtime.spec.defaults import DEFAULT_MASKED_PATHS
    bundle = _layered_bundle(rt, evil, ["true"],
                             linux={"masked_paths": DEFAULT_MASKED_PATHS + ("/etc/secret",)})
    out = rt.runtime("run", "-b", str(bundle), rt.name())
    assert out.returncode == 1
    assert "mask /etc/secret" in out.stderr and "symlink" in out.stderr


def test_a_volume_through_an_absolute_symlink_stays_inside_the_container(rt):
    evil = rt.base / "evil-vol"
    evil.mkdir()
    os.symlink("/", evil / "escape")                 # inside the container: its own root
    src = rt.base / "volume"
    src.mkdir()
    (src / "data").write_text("from the volume\n")
    target = f"/nodeagent-escape-{os.getpid()}"
    from runtime.spec.defaults import default_mounts
    bundle = _layered_bundle(rt, evil, ["cat", f"{target}/data"],
                             mounts=default_mounts() + (Mount(f"/escape{target}", "bind", str(src), ("rbind",)),))
    out = rt.runtime("run", "-b", str(bundle), rt.name())
    assert out.returncode == 0, out.stderr
    assert out.stdout == "from the volume\n"
    assert not os.path.exists(target)                # the host's / was never touched


def test_a_script_with_crlf_line_endings_is_explained(rt):
    top = rt.base / "crlf"
    top.mkdir()
    (top / "run.sh").write_bytes(b"#!/bin/sh\r\necho hi\r\n")
    (top / "run.sh").chmod(0o755)
    (top / "py.sh").write_bytes(b"#!/usr/bin/python3\nprint(1)\n")
    (top / "py.sh").chmod(0o755)
    out = rt.run("--rm", str(top), "/run.sh")       # (top alone: no busybox needed to refuse it)
    assert out.returncode == 127
    assert "carriage return" in out.stderr and "dos2unix" in out.stderr
    out = rt.run("--rm", str(top), "/py.sh")
    assert out.returncode == 127
    assert "is a script for /usr/bin/python3" in out.stderr


def test_user_mistakes_are_one_clear_line(rt):
    cases = [
        (["--memory", "lots", str(rt.rootfs), "true"], "--memory: 'lots' is not a memory size"),
        (["--cpus", "x", str(rt.rootfs), "true"], "--cpus: 'x' is not a CPU amount"),
        (["/nonexistent-rootfs", "true"], "ROOTFS_DIR_OR_IMAGE: /nonexistent-rootfs: no such directory"),
        (["--pull", "never", "nosuch/image:1", "true"], "nosuch/image:1: not a directory, and not an image"),
        ([str(rt.rootfs), "nosuchprogram"], "executable 'nosuchprogram' not found in $PATH"),
    ]
    for args, message in cases:
        out = rt.run("--rm", *args)
        assert out.returncode in (125, 127), (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert message in out.stderr, out.stderr
    cid = rt.name()
    assert rt.run("-d", "--name", cid, str(rt.rootfs), "sleep", "10").returncode == 0
    out = rt.run("--name", cid, str(rt.rootfs), "true")
    assert out.stderr.strip() == f"nodeagent run: container name '{cid}' is already in use"
