"""A root filesystem for container tests, laid out from Debian's busybox-static (one static binary).

Until images land, this is the "image": /bin/busybox plus a symlink per applet (sh, ls, cat, ...),
the directories a container expects, and a minimal /etc/passwd and /etc/group. Laid out once per
test session and then only ever used read-only (as an overlay lowerdir, or as a bundle rootfs
that runc and we both mount read-only).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BUSYBOX = Path("/bin/busybox")
REPO = Path(__file__).resolve().parents[1]


def make_rootfs(root: Path) -> Path:
    if not BUSYBOX.exists():
        pytest.skip("busybox-static is not installed (scripts/deps/apt-test.txt lists it)")
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin/busybox")
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", root / "bin" / applet)
    for d in ("proc", "sys", "dev", "etc", "tmp", "root", "var/tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    return root


def nodeagent(*args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    """Run the `nodeagent` CLI as a user would (a fresh process), capturing its output."""
    return subprocess.run([sys.executable, "-m", "nodeagent", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, **kw)
