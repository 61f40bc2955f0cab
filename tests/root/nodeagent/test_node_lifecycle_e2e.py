"""A node's lifecycle at its edges, end to end (`nodeagent up` in a network namespace, kubectl):
what happens to a finished pod's cgroup, to pods deleted while the agent was down, and what
`nodeagent down` leaves when it comes in the middle of a burst of pod starts.

One node serves the module (tests/nodekit.py); the tests run in file order, and the last one
takes the node down.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.nodekit import BUSYBOX_IMAGE, busybox_node


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = busybox_node(tmp_path_factory.mktemp("node"), "life")
    yield n
    if n.running:
        n.down()


def processes_naming(text: str) -> list[tuple[int, str]]:
    """(pid, command line) of every process whose command line contains `text`."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmdline = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                out.append((int(p.name), cmdline))
    return out


def own_cgroup_dirs() -> list[Path]:
    """Our own cgroup in every hierarchy (v1: one per controller; v2: the unified one)."""
    from runtime.cgroups.layout import CgroupMode, detect
    layout = detect()
    if layout.mode is CgroupMode.V2:
        return [layout.unified.own_dir]
    return sorted({h.own_dir for h in layout.v1.values()})


def pod_cgroups(uid: str) -> list[Path]:
    return [d for base in own_cgroup_dirs() for d in (base / "kubepods").glob(f"**/pod{uid}")]


def wait_until(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


def zygote_backlog(node) -> int | None:
    """Connections waiting on the zygote's listening socket (`ss`: Recv-Q of a listener)."""
    sock = str(node.data / "agent" / "runtime" / "zygote.sock")
    for line in node.sh("ss", "-xlnH").stdout.splitlines():
        words = line.split()
        if sock in words:
            return int(words[2])
    return None


def test_down_during_a_burst_with_a_busy_zygote_leaves_nothing(node):
    # A loaded machine, made deterministic: the zygote is stopped, so its listen backlog (16)
    # fills and creates wait in connect() past their 2 s timeout. The agent used to take that for
    # a dead zygote and start a second one over its socket; the first, with its two spare
    # workers, then ran for nobody and outlived `nodeagent down` (seen in ~3 of 12 density runs).
    runtime_dir = node.data / "agent" / "runtime"
    zygote = int((runtime_dir / "zygote.pid").read_text().split()[0])
    n = 24
    os.kill(zygote, signal.SIGSTOP)
    try:
        pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"burst{i}"},
                 "spec": {"nodeName": node.name, "terminationGracePeriodSeconds": 2,
                          "containers": [{"name": "c", "image": BUSYBOX_IMAGE,
                                          "imagePullPolicy": "Never",
                                          "command": ["sleep", "3611"]}]}} for i in range(n)]
        node.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                             "items": pods}))
        wait_until(lambda: (zygote_backlog(node) or 0) >= 16, 120, "the zygote's backlog full")
        # the point where the old agent gave up on it (connect's 2 s timeout), with room to spare
        time.sleep(6)
        assert int((runtime_dir / "zygote.pid").read_text().split()[0]) == zygote
    finally:
        os.kill(zygote, signal.SIGCONT)
    uids = [p["metadata"]["uid"] for p in node.get("pods")["items"] if p["metadata"]["name"].startswith("burst")]
    assert len(uids) == n
    out = node.down()                  # at once: creates, spare sandboxes, workers still under way
    assert out.returncode == 0, out.stderr
    assert processes_naming(str(node.data)) == []       # the zygote, its spares, supervisors, `up`
    assert processes_naming("sleep 3611") == []
    assert [d for uid in uids for d in pod_cgroups(uid)] == []
    assert str(node.data) not in Path("/proc/self/mountinfo").read_text()
    assert not Path(node.netns).exists()
