"""A node's lifecycle at its edges, end to end (`nodeagent up` in a network namespace, kubectl):
what happens to a finished pod's cgroup, to pods deleted while the agent was down, and what
`nodeagent down` leaves when it comes in the middle of a burst of pod starts.

One node serves the module (tests/nodekit.py); the tests run in file order, and the last one
takes the node down.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.waits import poll_until
from tests.nodekit import BUSYBOX_IMAGE, REPO, busybox_node


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


def zygote_backlog(node) -> int | None:
    """Connections waiting on the zygote's listening socket (`ss`: Recv-Q of a listener)."""
    sock = str(node.data / "agent" / "runtime" / "zygote.sock")
    for line in node.sh("ss", "-xlnH").stdout.splitlines():
        words = line.split()
        if sock in words:
            return int(words[2])
    return None


def test_a_finished_pod_loses_its_cgroup_and_keeps_its_status_logs_and_stats(node):
    # SyncTerminatedPod: a pod that will never run again gives its cgroup back (with its exited
    # containers' cgroups below it) when it finishes, not when the pod object is deleted.
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "done"},
            "spec": {"nodeName": node.name, "restartPolicy": "Never",
                     "containers": [{"name": "c", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
                                     "command": ["sh", "-c", "echo finished"]}]}}
    node.kubectl("create", "-f", "-", input=json.dumps(body))
    pod = node.wait_pod("done", lambda p: (p.get("status") or {}).get("phase") == "Succeeded")
    uid = pod["metadata"]["uid"]
    poll_until(lambda: not pod_cgroups(uid), 30, "the finished pod's cgroup removed")
    # the pod, its container's status and its log are all still there
    state = node.get("pod", "done")["status"]["containerStatuses"][0]["state"]
    assert state["terminated"]["exitCode"] == 0 and state["terminated"]["reason"] == "Completed"
    assert node.kubectl("logs", "done").stdout == "finished\n"
    summary = json.loads(node.kubectl("get", "--raw",
                                      f"/api/v1/nodes/{node.name}/proxy/stats/summary").stdout)
    assert summary["node"]["nodeName"] == node.name
    node.kubectl("delete", "pod", "done")
    node.wait_gone("pod", "done")


def hook_pod(node, name: str, hooks: Path, grace: int) -> None:
    """A pod whose preStop hook writes `hooks/<name>` on the host (a hostPath volume)."""
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node.name, "terminationGracePeriodSeconds": grace,
                     "volumes": [{"name": "hooks", "hostPath": {"path": str(hooks),
                                                                "type": "DirectoryOrCreate"}}],
                     "containers": [{"name": "c", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
                                     "command": ["sleep", f"36{grace:02d}"],
                                     "volumeMounts": [{"name": "hooks", "mountPath": "/hooks"}],
                                     "lifecycle": {"preStop": {"exec": {"command": [
                                         "sh", "-c", f"echo stopped > /hooks/{name}"]}}}}]}}
    node.kubectl("create", "-f", "-", input=json.dumps(body))


def kill_agent(node) -> None:
    """kill -9 the all-in-one process, and wait until it is gone."""
    pid = int((node.data / "nodeagent.pid").read_text().split()[0])
    pidfd = os.pidfd_open(pid)
    try:
        os.kill(pid, signal.SIGKILL)
        assert select.select([pidfd], [], [], 30)[0], "the agent did not die"
    finally:
        os.close(pidfd)


def test_pods_deleted_while_the_agent_was_down_get_their_pre_stop(node, tmp_path):
    # The all-in-one is one process, so "the API changed while the agent was down" is made the way
    # a cluster would see it: the agent is killed, the control plane alone (`nodeagent server` on
    # the same store and address) takes the deletes, and then the whole node comes back.
    #   gone      force-deleted: the restarted agent finds a container whose pod the API no
    #             longer has — its preStop and grace period come from the container's own
    #             annotations (restoreSpecsFromContainerLabels)
    #   deleting  deleted gracefully (deletionTimestamp set, no kubelet to finish it): the
    #             restarted agent stops it with the pod's spec, then makes the final DELETE
    hooks = tmp_path / "hooks"
    hook_pod(node, "gone", hooks, 7)
    hook_pod(node, "deleting", hooks, 8)
    for name in ("gone", "deleting"):
        node.wait_pod(name, lambda p: (p.get("status") or {}).get("phase") == "Running")
    kill_agent(node)
    assert processes_naming("sleep 3607") and processes_naming("sleep 3608")
    server = subprocess.Popen(["nsenter", f"--net={node.netns}", sys.executable, "-m", "nodeagent",
                               "server", "--data-dir", str(node.data / "control-plane"),
                               "--no-scheduler", "--controllers="],
                              cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        poll_until(lambda: node.kubectl("get", "pods", check=False).returncode == 0, 60,
                   "the control plane alone serving")
        node.kubectl("delete", "pod", "gone", "--force", "--grace-period=0")
        node.kubectl("delete", "pod", "deleting", "--wait=false")
        assert node.get("pod", "deleting")["metadata"].get("deletionTimestamp")
    finally:
        server.terminate()
        server.wait(30)
    assert not hooks.joinpath("gone").exists() and not hooks.joinpath("deleting").exists()
    node.up()
    for name in ("gone", "deleting"):
        poll_until(lambda: hooks.joinpath(name).exists(), 60, f"the preStop of {name}")
        assert hooks.joinpath(name).read_text() == "stopped\n"
    node.wait_gone("pod", "deleting")
    poll_until(lambda: not processes_naming("sleep 3607") and not processes_naming("sleep 3608"),
               60, "both containers stopped")


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
        poll_until(lambda: (zygote_backlog(node) or 0) >= 16, 120, "the zygote's backlog full")
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
