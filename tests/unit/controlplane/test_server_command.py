"""`nodeagent server` flags and `nodeagent kubeconfig`: certificates name the advertised address,
a written kubeconfig works with kubectl as is, and bad flags are one clear line."""

import subprocess
import sys

from tests.apiserver import REPO, Kubectl, start_server


def test_kubeconfig_command_and_advertised_sans(tmp_path):
    srv = start_server(tmp_path / "data", None, "--advertise-address", "192.0.2.44")
    try:
        out = tmp_path / "kc" / "config"
        p = subprocess.run([sys.executable, "-m", "nodeagent", "kubeconfig", "--data-dir", str(srv.data_dir),
                            "--server", srv.url, "-o", str(out)], capture_output=True, text=True, cwd=REPO)
        assert p.returncode == 0, p.stderr
        assert oct(out.stat().st_mode & 0o777) == "0o600"
        k = Kubectl(srv, tmp_path / "cache")
        k.env["KUBECONFIG"] = str(out)
        assert "default" in k("get", "ns")
        text = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                               str(srv.data_dir / "pki" / "apiserver.crt")], capture_output=True, text=True).stdout
        assert "IP Address:192.0.2.44" in text and "IP Address:127.0.0.1" in text and "DNS:kubernetes.default.svc" in text
        eps = k("get", "endpoints", "kubernetes", "-o", "jsonpath={.subsets[0].addresses[0].ip}")
        assert eps == "192.0.2.44"
    finally:
        srv.stop()


def test_bad_flags_are_one_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "nodeagent", "server", "--data-dir", str(tmp_path),
                        "--listen", "nonsense"], capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 2 and p.stderr.strip() == "nodeagent: error: --listen: expected HOST:PORT, got 'nonsense'"
    p = subprocess.run([sys.executable, "-m", "nodeagent", "kubeconfig", "--data-dir", str(tmp_path / "none")],
                       capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 2 and "not found" in p.stderr and "Traceback" not in p.stderr


def test_server_runs_the_scheduler_and_the_controllers(tmp_path):
    """`nodeagent server` alone is a control plane: a Deployment becomes pods, bound to a Node."""
    import json
    import time

    srv = start_server(tmp_path / "data", None, bare=False)
    try:
        k = Kubectl(srv, tmp_path / "cache")
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
                "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                           "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                           "conditions": [{"type": "Ready", "status": "True"}]}}
        k("create", "-f", "-", input=json.dumps(node))
        k("create", "deployment", "web", "--image=busybox", "--replicas=2")
        deadline = time.monotonic() + 60
        while True:
            pods = json.loads(k("get", "pods", "-o", "json"))["items"]
            bound = [p["spec"].get("nodeName") for p in pods]
            if len(pods) == 2 and bound == ["n1", "n1"]:
                break
            assert time.monotonic() < deadline, f"pods not created and bound: {bound}"
            time.sleep(0.3)
        lease = json.loads(k("get", "lease", "-n", "kube-system", "-o", "json"))["items"]
        assert {item["metadata"]["name"] for item in lease} >= {"kube-scheduler", "kube-controller-manager"}
    finally:
        srv.stop()


def test_unknown_controller_is_one_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "nodeagent", "server", "--data-dir", str(tmp_path),
                        "--controllers=replicaset,bogus"], capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 2
    assert p.stderr.strip() == "nodeagent: error: --controllers: unknown controller(s): bogus"
