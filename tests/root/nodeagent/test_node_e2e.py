"""A whole node, end to end: `nodeagent up` in a network namespace, driven with the real kubectl.

One node serves the module (tests/nodekit.py); the tests run in file order and the last one takes
the node down and checks that nothing is left. Pods name the node in spec.nodeName (what a
scheduler's binding would set), so they run whether or not this tree has a scheduler yet.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.waits import poll_until
from tests.nodekit import (
    BUSYBOX_IMAGE, Node, busybox_node, container_status, create_pod, ready, running)

IMAGE = BUSYBOX_IMAGE

# Every test here runs twice: on this host (cgroup v1/hybrid) and in the vm tier (cgroup v2
# unified, tests/harness/vmtier.py). Under the VM's emulator (TCG) the whole module takes about
# 8 minutes: a node starts in ~45 s and the kill -9 test needs two starts. Timeouts below are
# sized for that.
pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = busybox_node(tmp_path_factory.mktemp("node"), "e2e")
    yield n
    if n.running:
        n.down()


def waiting_reason(pod: dict, name: str) -> str | None:
    return container_status(pod, name)["state"].get("waiting", {}).get("reason")


def pids_with(marker: str) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if marker.encode() in (p / "cmdline").read_bytes().replace(b"\0", b" "):
                    out.append(int(p.name))
            except OSError:
                pass
    return out


def test_kubectl_run_busybox_running_ready_with_pod_ip(node):
    node.kubectl("run", "web", f"--image={IMAGE}", "--image-pull-policy=Never",
                 f'--overrides={{"spec":{{"nodeName":"{node.name}"}}}}',
                 "--", "httpd", "-f", "-p", "8080", "-h", "/var/www")
    pod = node.wait_pod("web", lambda p: running(p) and ready(p))
    ip = pod["status"]["podIP"]
    assert ip.startswith("10.244.") and pod["status"]["podIPs"] == [{"ip": ip}]
    cs = container_status(pod, "web")
    assert cs["containerID"].startswith("nodeagent://") and cs["imageID"].startswith("sha256:")
    # the pod answers on its IP, from the node
    got = node.sh("busybox", "wget", "-qO-", f"http://{ip}:8080/index.html")
    assert got.stdout == "hello from a pod\n", got.stderr
    wide = node.kubectl("get", "pod", "web", "-o", "wide").stdout
    assert "Running" in wide and ip in wide and node.name in wide
    events = node.kubectl("get", "events", "--field-selector", "involvedObject.name=web",
                          "-o", "json").stdout
    assert {"Created", "Started"} <= {e["reason"] for e in json.loads(events)["items"]}


def test_two_containers_share_ip_and_hostname(node):
    check = ('wget -qO- http://localhost:8080/index.html | grep -q "hello from a pod" && '
             'hostname > /dev/termination-log && exit 0; exit 1')
    create_pod(node, "two", [
        {"name": "web", "command": ["httpd", "-f", "-p", "8080", "-h", "/var/www"]},
        {"name": "side", "command": ["sh", "-c", f"sleep 1; {check}"]}], policy="Never")
    pod = node.wait_pod("two", lambda p: "terminated" in container_status(p, "side")["state"])
    term = container_status(pod, "side")["state"]["terminated"]
    assert term["exitCode"] == 0 and term["reason"] == "Completed", term
    assert term.get("message") == "two\n"
    assert "running" in container_status(pod, "web")["state"] and pod["status"]["phase"] == "Running"


def test_kubectl_logs_and_exec_through_the_kubelet_api(node):
    create_pod(node, "talk", [{"name": "c", "command": ["sh", "-c", "echo hello-logs; sleep 3600"]}])
    node.wait_pod("talk", running)
    deadline = time.monotonic() + 10
    while "hello-logs" not in (out := node.kubectl("logs", "talk", check=False)).stdout \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert out.stdout == "hello-logs\n", out.stderr
    assert node.kubectl("exec", "two", "-c", "web", "--", "sh", "-c", "exit 3",
                        check=False).returncode == 3
    got = node.kubectl("exec", "-i", "talk", "--", "cat", input="hi\n")
    assert got.stdout == "hi\n"
    host = node.kubectl("exec", "two", "-c", "web", "--", "hostname").stdout
    assert host == "two\n"
    node.kubectl("delete", "pod", "talk", "--grace-period=0", "--force")


def test_configmap_and_emptydir_volumes(node):
    node.kubectl("create", "configmap", "appcfg", "--from-literal=greeting=hello from a configmap")
    create_pod(node, "vols", [
        {"name": "writer", "command": ["sh", "-c", "echo shared > /data/note; sleep 3600"],
         "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
        {"name": "reader", "command": ["sleep", "3600"],
         "volumeMounts": [{"name": "data", "mountPath": "/data"},
                          {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True}]}],
        volumes=[{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "appcfg"}}])
    node.wait_pod("vols", running)
    got = node.kubectl("exec", "vols", "-c", "reader", "--", "cat", "/etc/cfg/greeting").stdout
    assert got == "hello from a configmap"
    poll_until(lambda: node.kubectl("exec", "vols", "-c", "reader", "--", "cat", "/data/note",
                                    check=False).stdout == "shared\n", 10, "the emptyDir shared")
    ro = node.kubectl("exec", "vols", "-c", "reader", "--", "sh", "-c", "echo x > /etc/cfg/new",
                      check=False)
    assert ro.returncode != 0                     # readOnly mount
    node.kubectl("delete", "pod", "vols", "--grace-period=0", "--force")


def test_http_readiness_probe(node):
    web = ["httpd", "-f", "-p", "8080", "-h", "/var/www"]
    good = {"httpGet": {"path": "/index.html", "port": 8080}, "periodSeconds": 1}
    bad = {"httpGet": {"path": "/nothing-here", "port": 8080}, "periodSeconds": 1, "failureThreshold": 1}
    create_pod(node, "probe-ok", [{"name": "c", "command": web, "readinessProbe": good}])
    create_pod(node, "probe-404", [{"name": "c", "command": web, "readinessProbe": bad}])
    node.wait_pod("probe-ok", ready)
    pod = node.wait_pod("probe-404", running)
    time.sleep(2)                                 # a few probe periods: still not ready
    pod = node.get("pod", "probe-404")
    assert not ready(pod) and not container_status(pod, "c")["ready"]
    events = json.loads(node.kubectl("get", "events", "--field-selector",
                                     "involvedObject.name=probe-404", "-o", "json").stdout)["items"]
    assert any(e["reason"] == "Unhealthy" and "statuscode: 404" in e["message"] for e in events)
    node.kubectl("delete", "pod", "probe-ok", "probe-404", "--grace-period=0", "--force")


def test_restart_policies_with_reasons_and_exit_codes(node):
    create_pod(node, "never", [{"name": "c", "command": ["sh", "-c", "exit 3"]}], policy="Never")
    create_pod(node, "onfailure", [{"name": "c", "command": ["true"]}], policy="OnFailure")
    create_pod(node, "always", [{"name": "c", "command": ["sh", "-c", "exit 1"]}], policy="Always")
    pod = node.wait_pod("never", lambda p: p["status"].get("phase") == "Failed")
    t = container_status(pod, "c")["state"]["terminated"]
    assert (t["exitCode"], t["reason"]) == (3, "Error")
    pod = node.wait_pod("onfailure", lambda p: p["status"].get("phase") == "Succeeded")
    assert container_status(pod, "c")["state"]["terminated"]["reason"] == "Completed"
    pod = node.wait_pod("always", lambda p: waiting_reason(p, "c") == "CrashLoopBackOff")
    cs = container_status(pod, "c")
    assert cs["restartCount"] >= 1 and cs["lastState"]["terminated"]["exitCode"] == 1
    # 10s after the second crash, 20s after the third... (a slow machine may show a later one)
    assert re.match(r"back-off (10|20|40)s restarting failed container=c pod=always_default\(",
                    cs["state"]["waiting"]["message"]), cs["state"]["waiting"]
    table = node.kubectl("get", "pods", "never", "onfailure", "always").stdout
    assert "Error" in table and "Completed" in table and "CrashLoopBackOff" in table
    node.kubectl("delete", "pod", "never", "onfailure", "always", "--grace-period=0", "--force")


def _own_cgroup_dir(controller: str) -> Path:
    """Our own cgroup in the hierarchy that has `controller` (v1), or in the unified one (v2)."""
    from runtime.cgroups.layout import CgroupMode, detect
    layout = detect()
    if layout.mode is CgroupMode.V2:
        return layout.unified.own_dir
    return layout.v1[controller].own_dir


def test_oom_killed_exit_137_restart_count_1_and_cgroup_values(node):
    # One 200 MiB buffer, filled by a single read (the kernel zeroes the pages): over the limit
    # at once. (`head -c 200m /dev/zero | tail` took 64 s to get there in the vm tier: busybox
    # tail scans every byte and grows its buffer 8 KiB a read, and at 250m under the emulator
    # it was throttled in 517 of 654 periods.)
    hog = ["dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"]
    res = {"limits": {"memory": "64Mi", "cpu": "250m"}, "requests": {"memory": "64Mi", "cpu": "250m"}}
    create_pod(node, "oom", [{"name": "hog", "command": hog, "resources": res}])
    # (120 s: the first pod of a fresh node under the vm tier's emulator took over 60 s to start)
    pod = node.wait_pod("oom", lambda p: container_status(p, "hog")["restartCount"] >= 1, timeout=120)
    last = container_status(pod, "hog")["lastState"]["terminated"]
    assert (last["reason"], last["exitCode"]) == ("OOMKilled", 137)
    assert pod["status"]["qosClass"] == "Guaranteed"
    # the pod's cgroup (Guaranteed: straight below kubepods) holds the mapped values
    pod_dir = _own_cgroup_dir("memory") / "kubepods" / f"pod{pod['metadata']['uid']}"
    cpu_dir = _own_cgroup_dir("cpu") / "kubepods" / f"pod{pod['metadata']['uid']}"
    if (pod_dir / "memory.max").exists():                                   # cgroup v2
        from runtime.spec.units import shares_to_weight
        assert int((pod_dir / "memory.max").read_text()) == 64 * 2**20
        assert (cpu_dir / "cpu.max").read_text().split() == ["25000", "100000"]
        assert int((cpu_dir / "cpu.weight").read_text()) == shares_to_weight(256)
    else:                                                                   # cgroup v1
        assert int((pod_dir / "memory.limit_in_bytes").read_text()) == 64 * 2**20
        assert int((cpu_dir / "cpu.cfs_quota_us").read_text()) == 25_000
        assert int((cpu_dir / "cpu.shares").read_text()) == 256
    node.kubectl("delete", "pod", "oom", "--grace-period=0", "--force")


def _watch_last_status(node: Node, name: str) -> subprocess.Popen:
    return node.kubectl_popen("get", "pod", name, "-w", "-o", "json", "--output-watch-events",
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _last_before_delete(proc: subprocess.Popen) -> dict:
    """The pod as last seen before its DELETED event (kubectl's watch output)."""
    proc.terminate()
    text = proc.communicate(timeout=10)[0]
    dec, i, events = json.JSONDecoder(), 0, []
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        obj, i = dec.raw_decode(text, i)
        events.append(obj)
    before = [e["object"] for e in events if e["type"] != "DELETED"]
    return before[-1]


def test_graceful_termination_trap_ignore_and_force(node):
    trap = 'trap "echo bye > /dev/termination-log; exit 0" TERM; while true; do sleep 0.2; done'
    ignore = 'trap "" TERM; while true; do sleep 0.2; done'
    create_pod(node, "trap", [{"name": "c", "command": ["sh", "-c", trap]}], grace=30)
    create_pod(node, "ignore", [{"name": "c", "command": ["sh", "-c", ignore]}], grace=3)
    create_pod(node, "force", [{"name": "c", "command": ["sleep", "3603"]}], grace=30)
    for name in ("trap", "ignore", "force"):
        node.wait_pod(name, running)

    w = _watch_last_status(node, "trap")
    t0 = time.monotonic()
    node.kubectl("delete", "pod", "trap", "--timeout=25s")          # gone well within its 30 s
    trap_took = time.monotonic() - t0
    t = container_status(_last_before_delete(w), "c")["state"]["terminated"]
    assert t["exitCode"] == 0 and t.get("message") == "bye\n", t

    w = _watch_last_status(node, "ignore")
    t0 = time.monotonic()
    node.kubectl("delete", "pod", "ignore", "--timeout=25s")
    ignore_took = time.monotonic() - t0
    t = container_status(_last_before_delete(w), "c")["state"]["terminated"]
    assert t["exitCode"] == 137, t                                    # SIGKILL at the grace period
    assert ignore_took >= 3 and trap_took < 25, (trap_took, ignore_took)

    assert pids_with("sleep 3603")
    node.kubectl("delete", "pod", "force", "--force", "--grace-period=0")
    poll_until(lambda: not pids_with("sleep 3603"), 10, "the force-deleted pod's process gone")
    node.wait_gone("pod", "force")


def test_agent_kill_9_then_restart_adopts_containers(node):
    create_pod(node, "keep", [{"name": "c", "command": ["sleep", "3604"]}])
    create_pod(node, "dies", [{"name": "c", "command": ["sleep", "3605"]}], policy="Never")
    keep = node.wait_pod("keep", running)
    dies = node.wait_pod("dies", running)
    pid = int((node.data / "nodeagent.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    poll_until(lambda: not Path(f"/proc/{pid}").exists() or
               "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2], 10, "the agent dead")
    assert pids_with("sleep 3604"), "the containers outlive the agent"
    for p in pids_with("sleep 3605"):
        os.kill(p, signal.SIGKILL)                                   # an exit during the outage
    node.up()
    pod = node.wait_pod("dies", lambda p: p["status"].get("phase") == "Failed")
    t = container_status(pod, "c")["state"]["terminated"]
    assert t["exitCode"] == 137 and container_status(pod, "c")["containerID"] == container_status(dies, "c")["containerID"]
    pod = node.wait_pod("keep", running)
    assert container_status(pod, "c")["containerID"] == container_status(keep, "c")["containerID"]
    assert container_status(pod, "c")["restartCount"] == 0
    assert container_status(pod, "c")["state"]["running"]["startedAt"] == \
        container_status(keep, "c")["state"]["running"]["startedAt"]


def test_down_leaves_nothing(node):
    uids = [p["metadata"]["uid"] for p in node.get("pods")["items"]]
    assert uids
    out = node.down()
    assert out.returncode == 0, out.stderr
    assert not Path(node.netns).exists()
    assert node.netns_name not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                 text=True).stdout
    for marker in ("sleep 3604", "httpd -f -p 8080"):
        assert not pids_with(marker), marker
    for ctl in ("memory", "cpu", "pids"):
        # this node's pods only: other nodes on the machine may share our cgroup (down leaves
        # theirs alone)
        d = _own_cgroup_dir(ctl)
        assert not [p for uid in uids for p in (d / "kubepods").glob(f"**/pod{uid}")], ctl
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(node.data) not in mounts
