"""Creating containers from a threaded agent: through the runtime's zygote.

runtime.container.create forks the container's supervisor, which then runs Python code; a
process with threads must never do that (the child inherits locks held by threads that do not
exist in it). The agent has threads (asyncio's executor, aiohttp). So the agent never creates a
container itself: it asks a zygote (runtime/process/zygote.py) — a single-threaded process that
has imported the runtime once and keeps warm forked workers. A worker creates the container and
*becomes* its supervisor; the supervisor therefore is not the agent's child, and lives on when
the agent is killed.

One zygote per state dir, at <state_dir>/runtime/zygote.sock. `ensure` starts one if none
answers (double-forked by `runtime.process.zygote.start_detached` in a fresh Python process, so
it is nobody's child but init's — a zygote the agent forked directly would stay its zombie when
it ended). A zygote left by a previous agent is used again if it runs the same code
(code_fingerprint), else replaced. A zygote is alive if its pid file names a process with the
recorded start time (runtime.zygote.client.running) — never "if it answers": one busy under load
may not. It runs in the agent's cgroup and network namespace (it inherits them), which is what
containers' cgroup paths and hostNetwork pods are relative to. `stop` ends it (cleanup,
`nodeagent down`).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading

from runtime.process import zygote as rz

log = logging.getLogger(__name__)

_START = ("import sys\nfrom runtime.process.zygote import start_detached\n"
          "print(start_detached(sys.argv[1]))\n")

_lock = threading.Lock()   # one start at a time in this process


CODE_FILE = "zygote.code"
# How long a create waits for a zygote that is alive but does not accept (its listen backlog is
# full while it forks spares for a burst of creates on a loaded machine).
BUSY_TIMEOUT = 60.0


def code_fingerprint() -> str:
    """What code a zygote started now would run: the runtime package's location and the newest
    modification time of its modules. A zygote keeps the code it imported when it started, so
    one left running by an older agent (before an upgrade, or a `git pull`) is replaced."""
    import runtime

    top = os.path.dirname(runtime.__file__)
    newest = 0.0
    for directory, _, files in os.walk(top):
        for name in files:
            if name.endswith(".py"):
                newest = max(newest, os.stat(os.path.join(directory, name)).st_mtime)
    return f"{top} {sys.executable} {newest:.6f}"


def ensure(root: str) -> None:
    """Make sure a zygote running the current code serves `root` (start one if none answers,
    replace one that runs older code — the containers it made are not its children's business:
    their supervisors are separate processes and carry on)."""
    with _lock:
        want = code_fingerprint()
        try:
            with open(os.path.join(root, CODE_FILE)) as f:
                have = f.read()
        except OSError:
            have = None
        # Alive is what the pid file and the process's start time say (rz.running), not whether
        # it answered: a busy zygote does not answer for seconds, and starting a second one over
        # its socket left the first running for nobody — the zygote and two spares that
        # `nodeagent down` left behind after a burst of pods.
        if rz.running(root) is not None:
            if have == want:
                return
            stop(root)
        os.makedirs(root, mode=0o711, exist_ok=True)
        proc = subprocess.run([sys.executable, "-c", _START, root], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise RuntimeError(f"starting the runtime's zygote for {root}: "
                               f"{proc.stderr.strip() or proc.returncode}")
        with open(os.path.join(root, CODE_FILE), "w") as f:
            f.write(want)


def create(root: str, storage: str, cid: str, bundle: str, log_path: str, *,
           stdin: bool = False, stdin_once: bool = False) -> dict:
    """Have the zygote create container `cid` from the bundle; returns its state record. The
    supervisor channel is closed at once (detached): start goes through <state>/shim.sock."""
    ch = rz.connect(root)
    if ch is None:
        ensure(root)   # starts one only if none is alive (a busy one is waited for, below)
        ch = rz.connect(root, timeout=BUSY_TIMEOUT)
        if ch is None:
            raise RuntimeError(f"no zygote answers at {root}")
    null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    try:
        record, channel = rz.request_create(
            ch, {"op": "create", "id": cid, "bundle": bundle, "root": root, "storage": storage,
                 "log": log_path, "stdin_open": False, "stdin_pipe": stdin,
                 "stdin_once": stdin_once}, [null, null, null])
    finally:
        os.close(null)
    channel.close()
    return record


def stop(root: str) -> None:
    """End the zygote serving `root` (runtime/zygote: the one way, for `nodeagent runtime zygote
    --stop` too) and forget which code it ran."""
    try:
        rz.stop(root)
    except OSError as e:   # it did not exit in time: the next ensure() starts another anyway
        log.warning("%s", e)
    try:
        os.unlink(os.path.join(root, CODE_FILE))
    except FileNotFoundError:
        pass
