"""kube-controller-manager's --controllers syntax, and bad flags as one line."""

import subprocess
import sys

import pytest

from controlplane.controllers.manager import KNOWN, resolve
from tests.apiserver import REPO


def test_controllers_syntax():
    assert resolve(None) == list(KNOWN)
    assert resolve({"*"}) == list(KNOWN)
    assert resolve({"*", "-nodeipam", "-podgc"}) == [n for n in KNOWN if n not in ("nodeipam", "podgc")]
    assert resolve({"deployment", "replicaset"}) == ["replicaset", "deployment"]  # upstream's order
    with pytest.raises(ValueError, match="unknown controller"):
        resolve({"*", "-bogus"})


def test_unknown_controller_is_one_line(tmp_path):
    cfg = tmp_path / "kubeconfig"
    cfg.write_text("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
                   "users: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
                   "current-context: x\n")
    p = subprocess.run([sys.executable, "-m", "controlplane.controllers", "--kubeconfig", str(cfg),
                        "--controllers=replicaset,bogus"], capture_output=True, text=True, cwd=REPO, timeout=30,
                       env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert p.returncode == 1
    assert p.stderr.strip().splitlines() == ["controllers: --controllers: unknown controller(s): bogus"]
