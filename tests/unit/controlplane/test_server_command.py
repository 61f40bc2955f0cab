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
