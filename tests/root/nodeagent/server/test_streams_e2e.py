"""The kubelet API on a real node: `nodeagent up` in a network namespace (tests/nodekit.py), real
containers from nodeagent/cri, driven with the real kubectl 1.37 — the streaming verbs that
tests/root/nodeagent/test_node_e2e.py does not cover: logs -f and --previous, exec -it,
attach, port-forward, cp."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time

import pytest

from tests.nodekit import Node, busybox_node, running

IMAGE = "localhost/busybox:1"

# Not in the vm tier: these are the kubelet API's protocols, the same whatever the cgroup
# version, and under the VM's emulator the module took 8-10 minutes of CI's 40 (2026-12-06: 5/5
# passed there). The node e2e module (test_node_e2e.py) runs there and covers logs and exec.


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = busybox_node(tmp_path_factory.mktemp("kapi-node"), "kapi")
    yield n
    if n.running:
        n.down()


def create(node: Node, name: str, container: dict, policy: str = "Always") -> None:
    container = {"name": "c", "image": IMAGE, "imagePullPolicy": "Never", **container}
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node.name, "restartPolicy": policy,
                     "terminationGracePeriodSeconds": 1, "containers": [container]}}
    node.kubectl("create", "-f", "-", input=json.dumps(body))


def read_until(proc: subprocess.Popen, want: str, timeout: float) -> str:
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    seen, deadline = "", time.monotonic() + timeout
    while want not in seen and (left := deadline - time.monotonic()) > 0 and sel.select(left):
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            break
        seen += chunk.decode(errors="replace")
    sel.close()
    return seen


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def test_logs_follow_and_previous(node):
    create(node, "ticker", {"command": ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); "
                                                    "sleep 0.2; done"]})
    node.wait_pod("ticker", running)
    proc = node.kubectl_popen("logs", "-f", "ticker", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = read_until(proc, "tick 1\n", 30)
        assert "tick 1\n" in first
        later = int(first.strip().splitlines()[-1].split()[1]) + 3
        assert f"tick {later}\n" in read_until(proc, f"tick {later}\n", 10), "no new lines followed"
        # A line of our own into the container's stdout (its pid 1's fd 1), timed until kubectl
        # prints it: the path runtime log file → kubelet API → API server → kubectl.
        t0 = time.monotonic()
        node.kubectl("exec", "ticker", "--", "sh", "-c", "echo marker-line > /proc/1/fd/1")
        t1 = time.monotonic()
        assert "marker-line" in read_until(proc, "marker-line", 10)
        print(f"logs -f on a real node: kubectl exec took {(t1 - t0) * 1000:.0f} ms; its line reached "
              f"kubectl logs -f {(time.monotonic() - t1) * 1000:.0f} ms after the exec returned")
    finally:
        stop(proc)

    create(node, "crasher", {"command": ["sh", "-c", "echo run-$(cat /proc/sys/kernel/random/uuid); "
                                                     "sleep 0.5; exit 1"]})
    pod = node.wait_pod("crasher", lambda p: any(c.get("restartCount", 0) >= 1 for c in
                                                  (p.get("status") or {}).get("containerStatuses") or []),
                        timeout=60)
    assert pod
    prev = node.kubectl("logs", "crasher", "--previous").stdout
    assert prev.startswith("run-"), prev


def test_exec_with_a_tty(node):
    create(node, "shell", {"command": ["sleep", "3600"]})
    node.wait_pod("shell", running)
    cmd = (f"stty rows 30 cols 90; nsenter --net={node.netns} {node.kubectl_argv_str()} exec -it shell -- "
           "sh -c 'test -t 0 && echo TTY-YES; sleep 0.2; stty size'")
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert "TTY-YES" in p.stdout and "30 90" in p.stdout, p.stdout + p.stderr


def test_attach_to_a_tty_container(node):
    create(node, "attachee", {"command": ["sh", "-c", "while read l; do echo got-$l; done"],
                              "stdin": True, "tty": True})
    node.wait_pod("attachee", running)
    proc = node.kubectl_popen("attach", "-i", "attachee", stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(50):   # the first line may be typed before the attach is through: repeat
            proc.stdin.write(b"ping\n")
            proc.stdin.flush()
            if "got-ping" in read_until(proc, "got-ping", 0.5):
                break
        else:
            pytest.fail("attach never echoed: " + proc.stderr.read1(4096).decode(errors="replace"))
    finally:
        stop(proc)


def test_port_forward_http(node):
    create(node, "web", {"command": ["sh", "-c", "mkdir -p /www && echo hello-pf > /www/index.html "
                                                 "&& exec httpd -f -p 8080 -h /www"],
                         "ports": [{"containerPort": 8080}]})
    node.wait_pod("web", running)
    proc = node.kubectl_popen("port-forward", "pod/web", ":8080", stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        line = read_until(proc, "\n", 30)
        assert "Forwarding from 127.0.0.1:" in line, line
        local = int(line.split("127.0.0.1:")[1].split(" ")[0])
        code = ("import urllib.request,sys; sys.stdout.write(urllib.request.urlopen("
                f"'http://127.0.0.1:{local}/index.html', timeout=10).read().decode())")
        for _ in range(3):
            got = node.sh(sys.executable, "-c", code)
            assert got.stdout == "hello-pf\n", got.stderr
    finally:
        stop(proc)


def test_cp_both_ways(node, tmp_path):
    create(node, "box", {"command": ["sleep", "3600"]})
    node.wait_pod("box", running)
    local = tmp_path / "in.txt"
    local.write_text("to the pod\n")
    node.kubectl("cp", str(local), "box:/tmp/in.txt")
    assert node.kubectl("exec", "box", "--", "cat", "/tmp/in.txt").stdout == "to the pod\n"
    node.kubectl("exec", "box", "--", "sh", "-c", "echo from the pod > /tmp/out.txt")
    node.kubectl("cp", "box:/tmp/out.txt", str(tmp_path / "out.txt"))
    assert (tmp_path / "out.txt").read_text() == "from the pod\n"
