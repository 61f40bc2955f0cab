"""Fixtures for the controllers' tests: a real API server process (the parent conftest), the real
kubectl, and the controllers as their own process (`python -m controlplane.controllers`, as
kube-controller-manager runs beside a kube-apiserver), started from this worktree's code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.apiserver import REPO


class Controllers:
    def __init__(self, server, log: Path, *flags: str):
        self.log = log
        out = open(log, "ab")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "controlplane.controllers", "--kubeconfig", str(server.kubeconfig), *flags],
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        out.close()

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def start_controllers(server, tmp_path_factory):
    started: list[Controllers] = []
    logs = tmp_path_factory.mktemp("controllers")

    def start(*flags: str) -> Controllers:
        c = Controllers(server, logs / f"c{len(started)}.log", *flags)
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


def wait_until(pred, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    """Poll pred() until it returns something truthy; fail with `what` after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def get_json(kubectl, *args: str) -> dict:
    return json.loads(kubectl(*args, "-o", "json"))


def items(kubectl, *args: str) -> list[dict]:
    return get_json(kubectl, "get", *args)["items"]


def set_pod_status(kubectl, ns: str, name: str, *, ready: bool = True, phase: str = "Running",
                   ready_since: str | None = None) -> None:
    """Write pod status through the status subresource, as a kubelet would."""
    now = ready_since or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    st = {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now}]}
    kubectl("-n", ns, "patch", "pod", name, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": st}))


def maybe_json(kubectl, *args: str) -> dict | None:
    """`kubectl get ... -o json`, or None if it does not exist (yet)."""
    p = kubectl.run(*args, "-o", "json", check=False)
    return json.loads(p.stdout) if p.returncode == 0 else None
