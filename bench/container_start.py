#!/usr/bin/env python3
"""Cold container start: `nodeagent runtime run` versus `runc run` of /bin/true on one bundle.

What is measured: the wall time of one command, from fork to its exit, that creates a container
from an OCI bundle, runs /bin/true in it, waits for it and deletes it — everything a user waits for.
Both runtimes get the *same* bundle (the config.json `runc spec` writes, with terminal off, args
/bin/true, and a cgroupsPath inside our own cgroup, since we may create cgroups only there), on a
busybox root filesystem. Runs are interleaved (ours, runc, ours, runc, ...) after a warm-up, so
both see the same machine load; the script prints median, p99 and the ratio ours/runc.

"Cold" means a fresh process per container for both: runc is a Go binary that re-executes itself
(`runc init`); we are a Python interpreter that forks a supervisor, which forks the container's init.
Our modules are byte-compiled first (as an installed package would be), so the numbers do not
include compiling Python source.

Two rows for us: the CLI on its own (it imports the runtime, then creates the container in its own
process), and the CLI with a zygote serving the same state root (`nodeagent runtime zygote`: a
warm, pre-imported process forks the creator; the CLI only imports its client). The container start
is equally cold in both; the second is how a node runs, the first how runc runs.

A third row is how a node runs the CLI now: the `nodeagent` launcher (nodeagent/launcher.py:
Python without `site`) in front of a zygote that is also a command server (`nodeagent runtime
zygote -d`): the launcher hands its whole command line to the zygote, whose forked worker runs it
(nodeagent/cmdclient.py). Only Python's own start-up is left in the client.

Every process that enters a container runs from a sealed interpreter (runtime/process/sealed.py,
CVE-2019-5736): a zygote re-executes itself from one once, when it starts; the CLI without a zygote
(the first row) does so on every call, which is one more interpreter start-up in that row only.

A last row takes the interpreter out: this script itself asks the zygote to create, starts, waits
and removes the container (what the CLI does after Python has started and imported its client).
It shows how much of our time is the container and how much is starting a Python program.

Usage (as root, from the repository):  .venv/bin/python bench/container_start.py [--runs 40]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_bundle(base: Path) -> Path:
    bundle = base / "bundle"
    rootfs = bundle / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", rootfs / "bin/busybox")
    for applet in ("true", "sh"):
        os.symlink("busybox", rootfs / "bin" / applet)
    for d in ("proc", "sys", "dev", "tmp", "etc"):
        (rootfs / d).mkdir()
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/true"]
    config["linux"]["cgroupsPath"] = own_cgroup() + f"/nodeagent-bench-{os.getpid()}"
    (bundle / "config.json").write_text(json.dumps(config, indent=1))
    return bundle


def own_cgroup() -> str:
    """The deepest of our own cgroup paths (our memory cgroup on these hybrid hosts)."""
    from runtime.cgroups.layout import detect

    layout = detect()
    paths = [h.own_path for h in layout.v1.values()] + ([layout.unified.own_path] if layout.unified else [])
    return max(paths, key=len).rstrip("/")


def timed(argv: list[str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.decode().strip()}")
    return elapsed


def in_process(base: Path, bundle: Path, cid: str) -> float:
    """Create (through the zygote), start, wait and remove, from this already-running process."""
    from runtime.container.run import drive
    from runtime.zygote import client as zygote

    root = str(base / "zstate")
    t = time.perf_counter()
    record, channel = zygote.request_create(
        zygote.connect(root), {"op": "create", "id": cid, "bundle": str(bundle), "root": root,
                               "storage": str(base / "storage"), "remove_on_exit": True,
                               "foreground": True}, [0, 1, 2])
    code = drive(channel, record, root, cid, remove=True)
    elapsed = time.perf_counter() - t
    if code != 0:
        raise SystemExit(f"in-process run exited {code}")
    return elapsed


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def cgroup_dirs(prefix: str) -> set[Path]:
    """Existing directories along and below `prefix` in every hierarchy."""
    found = set()
    for mount in Path("/sys/fs/cgroup").iterdir():
        parts = Path(prefix.lstrip("/")).parts
        for i in range(1, len(parts) + 1):
            d = mount.joinpath(*parts[:i])
            if d.is_dir():
                found.add(d)
                if i == len(parts):
                    found.update(p for p in d.glob("**/*") if p.is_dir())
    return found


def remove_new_cgroups(prefix: str, before: set[Path]) -> None:
    """runc (cgroupfs) leaves the parents of its cgroupsPath behind: remove the ones that did not
    exist before we started, deepest first."""
    for d in sorted(cgroup_dirs(prefix) - before, key=lambda p: -len(p.parts)):
        try:
            d.rmdir()
        except OSError:
            pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="measured runs of each (default 40)")
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: both runtimes create namespaces and cgroups")
    runc = shutil.which("runc")
    if runc is None:
        raise SystemExit("runc is not installed (apt-get install runc; scripts/deps/apt-test.txt)")
    # An installed package has .pyc files; a checkout under PYTHONDONTWRITEBYTECODE=1 would not.
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", "runtime", "nodeagent"], cwd=REPO,
                   env=env, check=True, stdout=subprocess.DEVNULL)
    nodeagent = str(Path(sys.executable).parent / "nodeagent")
    base = Path(tempfile.mkdtemp(prefix="nodeagent-bench-"))
    cgroup_prefix = own_cgroup() + f"/nodeagent-bench-{os.getpid()}"
    before = cgroup_dirs(cgroup_prefix)
    try:
        bundle = make_bundle(base)
        ours_cmd = lambda i: [nodeagent, "runtime", "--root", str(base / "state"), "--storage",
                              str(base / "storage"), "run", "-b", str(bundle), f"na{os.getpid()}-{i}"]
        zyg_cmd = lambda i: [nodeagent, "runtime", "--root", str(base / "zstate"), "--storage",
                             str(base / "storage"), "run", "-b", str(bundle), f"nz{os.getpid()}-{i}"]
        from runtime.zygote import server as zygote
        zygote_pid = zygote.start_detached(str(base / "zstate"))
        from nodeagent import launcher
        launcher_path = str(base / "nodeagent")
        launcher.write(launcher_path)
        server_pid = int(subprocess.run([launcher_path, "runtime", "--root", str(base / "cstate"),
                                         "zygote", "-d"], check=True, capture_output=True,
                                        text=True).stdout)
        cmd_cmd = lambda i: [launcher_path, "runtime", "--root", str(base / "cstate"), "--storage",
                             str(base / "storage"), "run", "-b", str(bundle), f"nc{os.getpid()}-{i}"]
        runc_cmd = lambda i: [runc, "--root", str(base / "runc"), "run", "-b", str(bundle),
                              f"rc{os.getpid()}-{i}"]
        for i in range(args.warmup):
            timed(ours_cmd(f"w{i}"))
            timed(zyg_cmd(f"w{i}"))
            timed(cmd_cmd(f"w{i}"))
            timed(runc_cmd(f"w{i}"))
        ours, warm, served, inproc, theirs = [], [], [], [], []
        for i in range(args.runs):
            ours.append(timed(ours_cmd(i)))
            warm.append(timed(zyg_cmd(i)))
            served.append(timed(cmd_cmd(i)))
            inproc.append(in_process(base, bundle, f"ni{os.getpid()}-{i}"))
            theirs.append(timed(runc_cmd(i)))
    finally:
        for pid in (locals().get("zygote_pid"), locals().get("server_pid")):
            if pid:
                os.kill(pid, 15)  # the zygotes this script started (by pid, never by name)
        shutil.rmtree(base, ignore_errors=True)
        remove_new_cgroups(cgroup_prefix, before)
    ms = lambda v: f"{v * 1000:7.1f} ms"
    m_runc = statistics.median(theirs)
    print(f"cold start of /bin/true from one OCI bundle, {args.runs} interleaved runs each")
    print(f"  {'':38}{'median':>10}{'p99':>11}{'ratio (median, p99)':>24}")
    for label, values in (("nodeagent runtime run", ours), ("nodeagent runtime run + zygote", warm),
                          ("nodeagent (launcher, command server)", served),
                          ("  the same, minus Python start", inproc), ("runc run (peer)", theirs)):
        ratio = f"{statistics.median(values) / m_runc:.2f}, {p99(values) / p99(theirs):.2f}"
        print(f"  {label:38}{ms(statistics.median(values))}{ms(p99(values))}{ratio:>24}")
    print("  (ratio = ours / runc; target <= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
