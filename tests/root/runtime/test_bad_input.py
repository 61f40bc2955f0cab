"""Bad input is refused with one line that names the field — and leaves nothing behind.

User and group IDs first: to setresuid/setresgid, -1 (= 4294967295 as uid_t) means "leave it
unchanged", so before these checks a container asking for uid 4294967295 simply stayed root with
every default capability. Every way an ID enters is tried: config.json (uid, gid, additionalGids),
`nodeagent run -u`, `runtime exec -u`, an image's User, its /etc/passwd and /etc/group. Then the
resource limits (checked before any cgroup is made, named as config.json spells them), a config
nested 100,000 deep, hostnames the kernel would take but should not, a memory limit too small to
start the init, and symlinks planted in the root filesystem.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.busybox import REPO
from tests.imagekit import OciLayout, base_layer
from tests.layerkit import dir_, file_, tar_bytes

BAD_IDS = (-1, 4294967295, 2**32, 2**31)


def _own_cgroup_path() -> str:
    from runtime.cgroups.layout import detect

    layout = detect()
    paths = {h.own_path for h in layout.v1.values()} | ({layout.unified.own_path} if layout.unified else set())
    return max(paths, key=len).rstrip("/")


def _config(rt, **changes) -> dict:
    from runtime.spec.bundle import spec_to_dict
    from runtime.spec.defaults import default_spec

    config = spec_to_dict(default_spec(("true",), str(rt.rootfs), readonly=True, hostname="bad"))
    for path, value in changes.items():
        node = config
        *parents, last = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return config


def _write(rt, config: dict | str) -> Path:
    d = rt.base / f"bundle-{rt.name('b')}"
    d.mkdir()
    (d / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    return d


def _nothing_left(rt) -> None:
    """No state directory, no overlay directory, no cgroup of ours."""
    assert not rt.root.exists() or os.listdir(rt.root) == [], os.listdir(rt.root)
    assert not rt.storage.exists() or os.listdir(rt.storage) == []
    for mount in os.listdir("/sys/fs/cgroup"):
        d = Path("/sys/fs/cgroup", mount, _own_cgroup_path().lstrip("/"), "nodeagent")
        assert not d.exists() or not any(p.name.startswith(f"b{os.getpid()}") for p in d.iterdir())


def _refused(out: subprocess.CompletedProcess, *needles: str) -> None:
    assert out.returncode != 0, out.stdout
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("field", ["uid", "gid"])
@pytest.mark.parametrize("value", BAD_IDS)
def test_config_json_ids_outside_the_range_are_refused(rt, field, value):
    bundle = _write(rt, _config(rt, **{f"process.user.{field}": value}))
    out = rt.runtime("run", "-b", str(bundle), rt.name("b"))
    _refused(out, f"process.user.{field}", str(value), "0 to 2147483647")
    _nothing_left(rt)


def test_supplementary_groups_are_checked_too(rt):
    bundle = _write(rt, _config(rt, **{"process.user.additionalGids": [10, 4294967295]}))
    out = rt.runtime("run", "-b", str(bundle), rt.name("b"))
    _refused(out, "process.user.additionalGids[1]", "4294967295", "unchanged")
    _nothing_left(rt)


@pytest.mark.parametrize("user", ["4294967295", "-1", "0:4294967295", "2147483648:0"])
def test_nodeagent_run_user_flag(rt, user):
    out = rt.run("--rm", "-u", user, str(rt.rootfs), "id")
    assert out.returncode == 125
    _refused(out, "--user", "0 to 2147483647")
    _nothing_left(rt)


def test_runtime_exec_user_flag(rt):
    cid = rt.name("b")
    bundle = _write(rt, _config(rt, **{"process.args": ["sleep", "300"]}))
    assert rt.runtime("run", "-d", "-b", str(bundle), cid).returncode == 0
    try:
        for user in ("-1", "4294967295", "0:-1"):
            out = rt.runtime("exec", "-u", user, cid, "id", "-u")
            _refused(out, "--user", "0 to 2147483647")
        out = rt.runtime("exec", "-u", "65534", cid, "id", "-u")
        assert out.stdout.strip() == "65534"
        # Only the container's own process is in it: the refused execs left nothing running.
        ps = rt.runtime("exec", cid, "ps", "-o", "pid,comm")
        assert [line.split()[1] for line in ps.stdout.splitlines()[1:]] == ["sleep", "ps"]
    finally:
        rt.runtime("delete", "--force", cid)


def _image_with(rt, tag: str, config: dict, passwd: bytes | None = None, group: bytes | None = None):
    layers = [base_layer()]
    extra = [dir_("etc")]
    if passwd is not None:
        extra.append(file_("etc/passwd", passwd))
    if group is not None:
        extra.append(file_("etc/group", group))
    if len(extra) > 1:
        layers.append(tar_bytes(extra))
    layout = OciLayout(rt.base / "oci")
    layout.image(layers, tag=tag, config={"Cmd": ["id"], **config})
    store = rt.base / "images"
    out = subprocess.run([sys.executable, "-m", "nodeagent", "image", "import", "--store", str(store),
                          str(rt.base / "oci"), "--repo", "localhost/bad"],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    return str(store)


@pytest.mark.parametrize("case", [
    ("user-number", {"User": "4294967295"}, None, None, ("image config User", "4294967295")),
    ("user-group", {"User": "0:-1"}, None, None, ("image config User", "-1")),
    ("passwd-uid", {"User": "evil"}, b"root:x:0:0::/:/bin/sh\nevil:x:4294967295:0::/:/bin/sh\n", None,
     ("the image's /etc/passwd", "'evil'", "4294967295")),
    ("passwd-gid", {"User": "evil"}, b"evil:x:1000:-1::/:/bin/sh\n", None,
     ("the image's /etc/passwd", "'evil'", "-1")),
    ("group-gid", {"User": "app:evil"}, None, b"root:x:0:\nevil:x:4294967295:\n",
     ("the image's /etc/group", "'evil'", "4294967295")),
], ids=lambda c: c[0] if isinstance(c, tuple) else None)
def test_image_user_passwd_and_group(rt, case):
    name, config, passwd, group, needles = case
    store = _image_with(rt, name, config, passwd, group)
    out = rt.run("--rm", "--image-store", store, "--pull", "never", f"localhost/bad:{name}")
    assert out.returncode == 125
    _refused(out, *needles, "0 to 2147483647")
    _nothing_left(rt)


def test_a_config_nested_100000_deep_is_one_line(rt):
    bundle = _write(rt, '{"ociVersion": "1.0.2", "process": ' + "[" * 100_000 + "]" * 100_000 + "}")
    out = rt.runtime("run", "-b", str(bundle), rt.name("b"))
    _refused(out, str(bundle / "config.json"), "nested too deeply")
    _nothing_left(rt)


@pytest.mark.parametrize("field,value,needle", [
    ("memory.limit", -100, "linux.resources.memory.limit: -100 is not a valid limit"),
    ("memory.limit", 0, "linux.resources.memory.limit: 0 is not a valid limit"),
    ("cpu.shares", 0, "linux.resources.cpu.shares: 0"),
    ("cpu.quota", -5, "linux.resources.cpu.quota: -5"),
    ("cpu.period", 0, "linux.resources.cpu.period: 0"),
    ("pids.limit", 2**63, "linux.resources.pids.limit: 9223372036854775808"),
])
def test_limits_are_checked_before_any_cgroup_is_made(rt, field, value, needle):
    group, key = field.split(".")
    bundle = _write(rt, _config(rt, **{f"linux.resources.{group}": {key: value}}))
    out = rt.runtime("run", "-b", str(bundle), rt.name("b"))
    _refused(out, needle)
    assert "Invalid argument" not in out.stderr and "/sys/fs/cgroup" not in out.stderr
    _nothing_left(rt)


def test_a_memory_limit_too_small_to_start_says_so(rt):
    bundle = _write(rt, _config(rt, **{"linux.resources.memory": {"limit": 1}}))
    out = rt.runtime("run", "-b", str(bundle), rt.name("b"))
    _refused(out, "out-of-memory", "linux.resources.memory.limit")
    _nothing_left(rt)


@pytest.mark.parametrize("hostname,needles", [
    ("a" * 300, ("hostname", "300 characters", "64-byte limit")),
    ("two\nlines", ("hostname", "'two\\nlines'", "newlines")),
])
def test_hostnames(rt, hostname, needles):
    bundle = _write(rt, _config(rt, hostname=hostname))
    out = rt.runtime("run", "-b", str(bundle), rt.name("b"))
    _refused(out, *needles)
    assert "a" * 100 not in out.stderr
    _nothing_left(rt)


@pytest.mark.parametrize("planted,target,needles", [
    ("proc", "/etc", ("mount /proc", "refused: /proc in the root filesystem is a symlink to '/etc'",
                      "must be a real directory")),
    ("dev", "/nonexistent", ("mount /dev", "refused: /dev in the root filesystem is a symlink",
                             "never followed outside")),
])
def test_planted_symlinks_are_named(rt, planted, target, needles, tmp_path):
    import shutil

    rootfs = tmp_path / "planted"
    shutil.copytree(rt.rootfs, rootfs, symlinks=True)
    shutil.rmtree(rootfs / planted)
    os.symlink(target, rootfs / planted)
    config = _config(rt)
    config["root"]["path"] = str(rootfs)
    out = rt.runtime("run", "-b", str(_write(rt, config)), rt.name("b"))
    _refused(out, *needles)
    assert "openat2" not in out.stderr and "Errno" not in out.stderr
    _nothing_left(rt)
