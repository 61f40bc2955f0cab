"""`nodeagent agent` joins a machine to a cluster whose API server runs elsewhere (here: another
process, `nodeagent server`, in the same scratch network namespace standing for the machine)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.apiserver import free_port
from tests.nodekit import KUBECTL, REPO, busybox_image

IMAGE = "localhost/busybox:1"


def _in(netns: str, *argv: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(["nsenter", f"--net={netns}", *argv], cwd=REPO, **kw)


def test_agent_joins_and_runs_a_pod(tmp_path):
    name = f"na-join-{os.getpid()}-{secrets.token_hex(2)}"
    netns = f"/run/netns/{name}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    procs: list[subprocess.Popen] = []
    data = tmp_path / "agent"
    try:
        subprocess.run(["nsenter", f"--net={netns}", "ip", "link", "set", "lo", "up"], check=True)
        port = free_port()
        cp = tmp_path / "cp"
        log = open(tmp_path / "server.log", "wb")
        procs.append(_in(netns, sys.executable, "-m", "nodeagent", "server", "--data-dir", str(cp),
                         "--listen", f"127.0.0.1:{port}", stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 30
        while not (cp / "admin.kubeconfig").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        token = (cp / "pki" / "admin.token").read_text().strip()
        busybox_image(tmp_path / "oci")
        subprocess.run([sys.executable, "-m", "nodeagent", "image", "import", "--store",
                        str(data / "images"), str(tmp_path / "oci"), "--repo", "localhost/busybox"],
                       check=True, cwd=REPO, capture_output=True)
        alog = open(tmp_path / "agent.log", "wb")
        procs.append(_in(netns, sys.executable, "-m", "nodeagent", "agent", "--server",
                         f"https://127.0.0.1:{port}", "--token", token, "--node-ip", "127.0.0.1",
                         "--node-name", "joined", "--ca-file", str(cp / "pki" / "ca.crt"),
                         "--data-dir", str(data), "--pod-cidr", "10.244.7.0/24",
                         stdout=alog, stderr=subprocess.STDOUT))

        def kubectl(*args, **kw):
            return subprocess.run(["nsenter", f"--net={netns}", KUBECTL, "--kubeconfig",
                                   str(cp / "admin.kubeconfig"), *args], capture_output=True,
                                  text=True, timeout=60, **kw)

        def wait(cond, what, timeout=60):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if cond():
                    return
                time.sleep(0.2)
            raise AssertionError(f"{what}; agent log:\n{(tmp_path / 'agent.log').read_text()[-3000:]}")

        def node_ready():
            out = kubectl("get", "node", "joined", "-o", "json")
            return out.returncode == 0 and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (json.loads(out.stdout).get("status") or {}).get("conditions") or [])
        wait(node_ready, "node joined is not Ready")
        node = json.loads(kubectl("get", "node", "joined", "-o", "json").stdout)
        assert node["spec"]["podCIDR"] == "10.244.7.0/24"

        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"nodeName": "joined", "containers": [
                   {"name": "c", "image": IMAGE, "imagePullPolicy": "Never", "command": ["sleep", "3600"]}]}}
        assert kubectl("create", "-f", "-", input=json.dumps(pod)).returncode == 0

        def pod_running():
            out = kubectl("get", "pod", "p", "-o", "json")
            return out.returncode == 0 and json.loads(out.stdout)["status"].get("phase") == "Running"
        wait(pod_running, "pod p is not Running")
        ip = json.loads(kubectl("get", "pod", "p", "-o", "json").stdout)["status"]["podIP"]
        assert ip.startswith("10.244.7.")
        assert kubectl("delete", "pod", "p", "--grace-period=0", "--force").returncode == 0
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        subprocess.run(["nsenter", f"--net={netns}", sys.executable, "-m", "nodeagent.node", "clean",
                        str(data)], cwd=REPO, capture_output=True)
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
    assert not Path(netns).exists()
