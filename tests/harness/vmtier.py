#!/usr/bin/env python3
"""The vm tier: boot a virtme-ng VM on the distribution kernel and run `pytest -m vm` inside it.

Why a VM: these machines are cgroup *hybrid* (v1 controllers), while the nodes we target (Vagrant
boxes, Debian 12, Ubuntu 22.04+) are cgroup v2 unified. virtme-ng boots a real kernel in QEMU with
the host's own filesystem shared read-only over 9p, so the VM sees this checkout, this venv and this
Python — only the kernel (and so the cgroup layout) differs. /tmp is shared writable: the inner run
writes its log, junit XML and exit status there, and we read them back when the VM has gone.

Steps: find a kernel with its modules (/boot/vmlinuz-<v> + /lib/modules/<v>), make sure `vng` is
installed, probe KVM (a short boot with a timeout: nested KVM here exists but never runs a guest),
boot (KVM or TCG), run the tests, return their exit status.

Exit status: pytest's, from inside the VM; 77 when the tier cannot run here (a skip, with the reason
printed), which NODEAGENT_STRICT=1 turns into a failure. Arguments after `--` go to the inner pytest.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SKIP = 77
KVM_PROBE_SECONDS = 8
BOOT_TIMEOUT_SECONDS = 30 * 60


def log(msg: str) -> None:
    print(f"[vmtier] {msg}", file=sys.stderr, flush=True)


def cannot_run(reason: str) -> int:
    strict = os.environ.get("NODEAGENT_STRICT") == "1"
    banner = "FAILED" if strict else "SKIPPED"
    log("=" * 72)
    log(f"vm tier {banner}: {reason}")
    log("=" * 72)
    return 1 if strict else SKIP


def _version_key(v: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"[.-]", v)]


def find_kernel() -> tuple[Path, str] | None:
    """The newest /boot/vmlinuz-<v> that has /lib/modules/<v> (virtme-ng needs both)."""
    found = []
    for image in Path("/boot").glob("vmlinuz-*"):
        version = image.name[len("vmlinuz-"):]
        if (Path("/lib/modules") / version).is_dir() and os.access(image, os.R_OK):
            found.append((version, image))
    if not found:
        return None
    version, image = max(found, key=lambda vi: _version_key(vi[0]))
    return image, version


def find_vng() -> str | None:
    """vng from the venv we run in (it calls virtme-run through PATH, so the venv's bin goes first)."""
    venv_bin = Path(sys.executable).parent
    os.environ["PATH"] = f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"
    return shutil.which("vng")


def kvm_works(kernel: Path) -> bool:
    """Boot the kernel with KVM and no root filesystem: a working KVM reaches the "VFS: Unable to
    mount root fs" panic within a second or two and QEMU exits (panic=-1, -no-reboot). Here nested KVM
    spins at 100% sys without printing anything, so we give it a few seconds and fall back to TCG."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        return False
    argv = [qemu, "-accel", "kvm", "-m", "256", "-nographic", "-no-reboot", "-kernel", str(kernel),
            "-append", "console=ttyS0 panic=-1 loglevel=4"]
    try:
        out = subprocess.run(argv, capture_output=True, timeout=KVM_PROBE_SECONDS, text=True,
                             errors="replace")
    except subprocess.TimeoutExpired:
        return False
    return "Kernel panic" in out.stdout or "Linux version" in out.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory", default="2G")
    parser.add_argument("--cpus", default="2")
    parser.add_argument("pytest_args", nargs="*", help="after --: arguments for the inner pytest")
    args = parser.parse_args()

    if os.geteuid() != 0:
        return cannot_run("needs root (QEMU, and root inside the VM for cgroups)")
    kernel = find_kernel()
    if kernel is None:
        return cannot_run("no /boot/vmlinuz-<v> with /lib/modules/<v>: apt-get install linux-image-amd64")
    image, version = kernel
    vng = find_vng()
    if vng is None:
        return cannot_run("virtme-ng is not installed: pip install virtme-ng (scripts/test.sh does)")
    if shutil.which("qemu-system-x86_64") is None:
        return cannot_run("qemu-system-x86_64 missing: apt-get install qemu-system-x86")

    t0 = time.monotonic()
    kvm = kvm_works(image)
    log(f"kernel {version}; KVM {'works' if kvm else 'does not run guests here: using TCG'} "
        f"(probe {time.monotonic() - t0:.1f} s)")

    # /tmp is shared writable with the VM (over 9p); everything else it sees read-only. Only the
    # results go there: 9p loses unlinked-but-open files, which pytest's output capture and
    # tempfile use, so the tests' TMPDIR is a tmpfs inside the VM.
    out = Path(tempfile.mkdtemp(prefix="nodeagent-vmtier-", dir="/tmp"))
    vm_tmp = "/run/nodeagent-vmtier-tmp"
    inner = " ".join([
        f"mkdir -p {vm_tmp} && mount -t tmpfs -o size=1G tmpfs {vm_tmp} &&",
        f"cd {shlex.quote(str(REPO))} &&",
        f"TMPDIR={vm_tmp} NODEAGENT_IN_VM=1 PYTHONDONTWRITEBYTECODE=1",
        f"NODEAGENT_STRICT={shlex.quote(os.environ.get('NODEAGENT_STRICT', '0'))}",
        shlex.quote(sys.executable), "-m pytest -m vm -p no:cacheprovider",
        f"--junitxml={out}/junit.xml",
        *map(shlex.quote, args.pytest_args),
        f"> {out}/log 2>&1; echo $? > {out}/rc",
    ])
    argv = [vng, "-r", str(image), "--force-9p", "--rwdir", "/tmp",
            "--cpus", args.cpus, "-m", args.memory, "--exec", inner]
    if not kvm:
        argv.insert(1, "--disable-kvm")
    log("booting: " + " ".join(shlex.quote(a) for a in argv))
    t1 = time.monotonic()
    try:
        boot = subprocess.run(argv, cwd=REPO, timeout=BOOT_TIMEOUT_SECONDS,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace")
        vm_output = boot.stdout
    except subprocess.TimeoutExpired as e:
        vm_output = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        log(vm_output[-4000:])
        return cannot_run(f"the VM did not finish within {BOOT_TIMEOUT_SECONDS} s")
    elapsed = time.monotonic() - t1

    rc_file, log_file = out / "rc", out / "log"
    if log_file.exists():
        sys.stdout.write(log_file.read_text(errors="replace"))
        sys.stdout.flush()
    if not rc_file.exists():
        log(f"vng exited {boot.returncode}; its output:")
        sys.stderr.write(vm_output[-8000:])
        return cannot_run("the VM ran but the tests inside did not report back")
    rc = int(rc_file.read_text().strip() or 1)
    log(f"inside the VM, pytest exited {rc} ({elapsed:.0f} s boot + tests; junit: {out}/junit.xml)")
    return rc


if __name__ == "__main__":
    sys.exit(main())
