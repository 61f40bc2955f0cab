"""A runtime started inside a chroot still execs into the container's root.

Where this matters: nodeagent run from a chroot (a build root, a rescue system, some CI sandboxes).
There, the init's pivot_root puts the container's root on top of the chroot's directory, and the
mount namespace's *first* root stays the host's "/". setns(mnt) alone would land an exec'd process
there — seeing the host's /proc, where pid 1 is the host's init. exec therefore also takes the
init's own root (runtime/process/execproc.py).
"""

from __future__ import annotations

import shlex
import subprocess
import sys

from tests.busybox import REPO


def test_exec_from_inside_a_chroot_sees_the_container_not_the_host(rt, tmp_path):
    view = tmp_path / "chroot"
    view.mkdir()
    bundle = rt.bundle(["sleep", "30"])
    cid = rt.name()
    cli = f"{shlex.quote(sys.executable)} -m nodeagent runtime --root {rt.root} --storage {rt.storage}"
    # The chroot is a recursive bind of "/", so every path (the venv, the bundle) is the same
    # inside; the private mount namespace of `unshare -m` keeps the bind out of the host's view.
    script = f"""
        set -e
        mount --make-rprivate /
        mount --rbind / {view}
        chroot {view} sh -c '
            cd {REPO}
            {cli} run -d -b {bundle} {cid}
            {cli} exec {cid} sh -c "cat /proc/1/cmdline | tr \\"\\\\0\\" \\" \\"; echo; hostname"
            {cli} delete --force {cid}
        '
    """
    out = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[-2].strip() == "sleep 30"     # pid 1 of the container, not the host's init
    assert lines[-1] == "bundled"
