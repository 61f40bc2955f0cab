#!/usr/bin/env python3
"""Instructions, not milliseconds: the CPU work of a container start, counted with callgrind.

On a shared 2-core machine a wall time moves by tens of percent from one run to the next; the
number of instructions a process executes does not (within ~0.1% here). This counts them
(valgrind --tool=callgrind: user-space instructions only — the kernel's share, namespaces,
mounts, forks, is not in them) for the processes `nodeagent runtime run` of one bundle is made of:

  cli, first      without a zygote, the CLI from its start until it re-executes itself from a
                  sealed interpreter (runtime/process/sealed.py). Valgrind cannot execute a file
                  descriptor (fexecve), so the process ends there, with an error: exactly the
                  part to count, since nothing of it survives the re-execution.
  cli, sealed     the process the first one becomes, sealed (here: in a private mount namespace
                  where the interpreter is a read-only bind mount), which resumes the command
                  with the arguments already parsed (nodeagent/commands/runtime.py,
                  resume_command; a checkout without it ran the whole command line again),
                  until the supervisor it forks calls pidfd_open, a syscall valgrind 3.19 does
                  not know: the create fails there and undoes itself. So: the interpreter's
                  start, the imports, the bundle, the create's steps up to the fork.
  zygote client   with a zygote serving the state root: the whole client process (the zygote
                  itself runs outside valgrind).

To compare two versions, run it from each checkout (its modules are the ones measured).

Usage (as root, from the repository):  .venv/bin/python bench/start_instructions.py [--runs 3]
Needs valgrind (scripts/deps/apt-test.txt).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from container_start import REPO, cgroup_dirs, make_bundle, own_cgroup, remove_new_cgroups


def callgrind(argv: list[str], out: Path, wrap: list[str] | None = None,
              env: dict[str, str] | None = None) -> int:
    """Instructions of the process `argv` starts (not of its children), from callgrind's files."""
    for old in out.parent.glob(out.name + ".*"):
        old.unlink()
    env = dict(env or os.environ, PYTHONPATH=str(REPO))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    vg = ["valgrind", "-q", "--tool=callgrind", "--trace-children=yes",
          f"--callgrind-out-file={out}.%p"]
    proc = subprocess.Popen((wrap or []) + vg + argv, cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.wait()  # (an error exit is expected for the two cli rows: see the docstring)
    for line in Path(f"{out}.{proc.pid}").read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise SystemExit(f"no callgrind summary for {argv}")


def sealed_namespace() -> list[str]:
    """A command prefix: a private mount namespace where our interpreter and valgrind's own
    binaries are read-only bind mounts, so that sealed.is_sealed() holds under valgrind."""
    python = os.path.realpath(sys.executable)
    tools = "/usr/libexec/valgrind"
    script = "; ".join(f"mount --bind {p} {p} && mount -o remount,bind,ro {p} {p}"
                       for p in (python, tools)) + '; exec "$@"'
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh"]


def sealed_process(command: list[str], out: Path) -> int:
    """Instructions of the sealed process the CLI `command` re-executes itself as."""
    from nodeagent import cli
    from nodeagent.commands import runtime

    resume_command = getattr(runtime, "resume_command", None)
    if resume_command is None:  # (an older checkout: the whole command line again)
        return callgrind(command, out, sealed_namespace())
    args = cli.build_parser("runtime").parse_args(command[3:])
    python_args, env = resume_command(args)
    return callgrind([sys.executable, *python_args], out, sealed_namespace(), env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the container is created for real")
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", "runtime", "nodeagent", "localfs"],
                   cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    base = Path(tempfile.mkdtemp(prefix="nodeagent-bench-"))
    cgroup_prefix = own_cgroup() + f"/nodeagent-bench-{os.getpid()}"
    before = cgroup_dirs(cgroup_prefix)
    zygote_pid = None
    rows: dict[str, list[int]] = {"cli, first": [], "cli, sealed": [], "zygote client": []}
    try:
        bundle = make_bundle(base)
        run = lambda root, cid: [sys.executable, "-m", "nodeagent", "runtime", "--root", str(root),
                                 "--storage", str(base / "storage"), "run", "-b", str(bundle), cid]
        from runtime.zygote import server as zygote
        zygote_pid = zygote.start_detached(str(base / "zstate"))
        for i in range(args.runs):
            rows["cli, first"].append(callgrind(run(base / "state", f"a{i}"), base / "cg"))
            rows["cli, sealed"].append(sealed_process(run(base / "state", f"b{i}"), base / "cg"))
            rows["zygote client"].append(callgrind(run(base / "zstate", f"z{i}"), base / "cg"))
    finally:
        if zygote_pid:
            os.kill(zygote_pid, 15)  # the zygote this script started (by pid, never by name)
        shutil.rmtree(base, ignore_errors=True)
        remove_new_cgroups(cgroup_prefix, before)
    print(f"instructions (callgrind Ir, millions), median of {args.runs}, tree {REPO}")
    for label, values in rows.items():
        print(f"  {label:16}{statistics.median(values) / 1e6:9.1f}   "
              f"(spread {(max(values) - min(values)) / 1e6:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
