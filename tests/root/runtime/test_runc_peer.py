"""The same OCI bundle under runc (the reference runtime) and under us: the container's view of
itself must match. runc is Debian's runc 1.1.5 (scripts/deps/apt-test.txt)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess

import pytest

from runtime.cgroups.layout import detect

LOOK = ("grep -E '^(Cap|Seccomp:|NoNewPrivs)' /proc/self/status; hostname; id; "
        "ls -A /dev | sort | tr '\\n' ' '; echo; ls /proc/self/fd | tr '\\n' ' '; echo; "
        "touch /x 2>&1 | sed 's/.*: //'; (echo 1 > /proc/sys/kernel/ns_last_pid) 2>&1 | sed 's/.*: //'; "
        "cat /proc/kcore /proc/keys 2>&1 | wc -c; ls /sys/firmware | wc -l; "
        "readlink /proc/1/exe; echo $$")


def _own_cgroup_path() -> str:
    layout = detect()
    paths = {h.own_path for h in layout.v1.values()} | ({layout.unified.own_path} if layout.unified else set())
    return max(paths, key=len)  # below our memory cgroup on this host; "/" elsewhere


@pytest.fixture
def runc():
    path = shutil.which("runc")
    if path is None:
        pytest.skip("runc is not installed (scripts/deps/apt-test.txt lists it)")
    return path


def test_the_same_bundle_looks_the_same_under_runc_and_under_us(rt, runc):
    cid = rt.name("peer")
    # Both runtimes must create their cgroups below ours: an absolute path inside our own cgroup.
    cgroups_path = f"{_own_cgroup_path().rstrip('/')}/nodeagent-peer-{os.getpid()}/{cid}"
    before = _cgroup_dirs_on(cgroups_path)
    from runtime.spec.defaults import default_spec
    base = default_spec(("sh", "-c", LOOK), str(rt.rootfs), readonly=True, hostname="peer")
    spec = dataclasses.replace(base, linux=dataclasses.replace(base.linux, cgroups_path=cgroups_path))
    from runtime.spec.bundle import write_bundle
    bundle = rt.base / "peer-bundle"
    bundle.mkdir()
    write_bundle(spec, str(bundle))

    theirs = subprocess.run([runc, "--root", str(rt.base / "runc"), "run", "-b", str(bundle), cid],
                            capture_output=True, text=True, timeout=60)
    assert theirs.returncode == 0, theirs.stderr
    ours = rt.runtime("run", "-b", str(bundle), cid)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout
    assert "00000000a80425fb" in ours.stdout and "Seccomp:\t2" in ours.stdout
    assert rt.runtime("state", cid).returncode == 1         # deleted after the run, as runc does
    # runc (cgroupfs driver) makes the missing parents of the path in every hierarchy, and leaves
    # them; remove the ones that did not exist before this test, deepest first.
    for d in sorted(_cgroup_dirs_on(cgroups_path) - before, key=len, reverse=True):
        try:
            os.rmdir(d)
        except OSError:
            pass


def _cgroup_dirs_on(path: str) -> set[str]:
    """Existing directories along `path` in every cgroup hierarchy."""
    found = set()
    for mount in os.listdir("/sys/fs/cgroup"):
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            d = os.path.join("/sys/fs/cgroup", mount, *parts[:i])
            if os.path.isdir(d):
                found.add(d)
    return found
