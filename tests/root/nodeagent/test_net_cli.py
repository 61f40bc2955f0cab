"""`nodeagent cni` and `nodeagent net` end to end, run inside a simulated node."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.netsim import Cluster

NODEAGENT = str(Path(sys.executable).parent / "nodeagent")


def test_install_setup_show_teardown_and_node_ip(tmp_path):
    c = Cluster(nodes=1)
    try:
        run = lambda *a, check=True: c.sh("node1", NODEAGENT, *a, check=check)  # noqa: E731
        dirs = ["--conf-dir", str(tmp_path / "net.d"), "--bin-dir", str(tmp_path / "bin"),
                "--cache-dir", str(tmp_path / "cache")]
        out = run("cni", "install", "--bin-dir", str(tmp_path / "bin"), "--conf-dir", str(tmp_path / "net.d"),
                  "--pod-cidr", "10.244.1.0/24", "--cluster-cidr", "10.244.0.0/16",
                  "--data-dir", str(tmp_path / "ipam")).stdout
        assert "nodeagent-bridge" in out and "10-nodeagent.conflist" in out
        conf = json.loads((tmp_path / "net.d" / "10-nodeagent.conflist").read_text())
        assert conf["plugins"][0]["nonMasqueradeCIDRs"] == ["10.244.0.0/16"]

        pod = str(c.dir / "handles" / "web")
        run("net", "netns", "add", pod)
        setup = run("net", "setup", "--netns", pod, "--id", "web", "--port", "8080:80", "--explain", *dirs)
        result = json.loads(setup.stdout)
        ip = result["ips"][0]["address"].split("/")[0]
        assert "create veth pair" in setup.stderr and "why:" in setup.stderr and "cmd: ip link add" in setup.stderr

        show = run("net", "show", "web", "--cache-dir", str(tmp_path / "cache"), "--explain").stdout
        assert f"network namespace  {pod}" in show
        assert f"{ip}/24" in show and "veth peer on the node: veth" in show and "bridge cni0" in show
        assert "default via 10.244.1.1 dev eth0" in show
        assert f'{ip} comment "web/eth0"' in show and 'tcp . 8080 comment "web/eth0"' in show
        assert json.loads(run("net", "show", pod, "--cache-dir", str(tmp_path / "cache"), "--json").stdout
                          )["container_id"] == "web"

        trap = run("net", "node-ip", check=False)            # eth0 and the NAT nat0: ambiguous
        assert trap.returncode == 2 and "10.0.2.15" in trap.stderr and "192.168.56.11" in trap.stderr
        assert "Traceback" not in trap.stderr
        chosen = run("net", "node-ip", "--cluster-network", "192.168.56.0/24").stdout
        assert chosen.startswith("192.168.56.11") and "eth0" in chosen

        assert run("cni", "check", "--netns", pod, "--id", "web", *dirs).returncode == 0
        down = run("net", "teardown", "--netns", pod, "--id", "web", *dirs).stdout
        assert "delete veth" in down
        run("net", "netns", "del", pod)
        assert not Path(pod).exists()
        missing = run("net", "show", "web", "--cache-dir", str(tmp_path / "cache"), check=False)
        assert missing.returncode == 2 and "neither a network namespace path nor a container ID" in missing.stderr
    finally:
        c.cleanup()
