"""Node IPAM: each node gets a distinct podCIDR from the (configurable) cluster CIDR, released when
the node is deleted; an exhausted range is reported, not over-allocated."""

import subprocess
import sys

import pytest

from tests.apiserver import REPO
from tests.unit.controlplane.controllers.conftest import get_json, wait_until
from tests.unit.controlplane.controllers.fakes import FakeNodes


@pytest.fixture(scope="module", autouse=True)
def controllers(start_controllers):
    # a /22 holds four /24s: small enough to run out
    return start_controllers("--controllers=nodeipam", "--cluster-cidr=10.200.0.0/22")


def cidr_of(kubectl, node):
    return wait_until(lambda: (get_json(kubectl, "get", "node", node).get("spec") or {}).get("podCIDR"),
                      what=f"podCIDR of {node}")


def test_distinct_cidrs_released_on_delete_and_exhaustion(kubectl, server):
    with FakeNodes(server.kubeconfig) as nodes:
        for n in ("a", "b", "c"):
            nodes.add(n)
        got = {n: cidr_of(kubectl, n) for n in ("a", "b", "c")}
        assert sorted(got.values()) == ["10.200.0.0/24", "10.200.1.0/24", "10.200.2.0/24"]
        spec = get_json(kubectl, "get", "node", "a")["spec"]
        assert spec["podCIDRs"] == [spec["podCIDR"]]
        kubectl("delete", "node", "b")
        nodes.add("d")
        assert cidr_of(kubectl, "d") == "10.200.3.0/24"  # the roving pointer moves on first
        nodes.add("e")
        assert cidr_of(kubectl, "e") == got["b"]  # then the released one is used again
        nodes.add("f")
        ev = wait_until(lambda: [e for e in get_json(kubectl, "get", "events", "-n", "default")["items"]
                                 if e["reason"] == "CIDRNotAvailable"], what="CIDRNotAvailable event")
        assert ev[0]["involvedObject"]["name"] == "f"
        assert not (get_json(kubectl, "get", "node", "f").get("spec") or {}).get("podCIDR")
        # f waits: its updates (a kubelet posting status) do not retry it nor repeat the event
        for i in range(3):
            kubectl("label", "node", "f", f"touch={i}", "--overwrite")
        kubectl("delete", "node", "c")  # a release wakes it
        assert cidr_of(kubectl, "f") == got["c"]
        assert len([e for e in get_json(kubectl, "get", "events", "-n", "default")["items"]
                    if e["reason"] == "CIDRNotAvailable"]) == 1


def test_bad_cluster_cidr_is_one_line(server):
    p = subprocess.run([sys.executable, "-m", "controlplane.controllers", "--kubeconfig", str(server.kubeconfig),
                        "--cluster-cidr=10.300.0.0/16"], capture_output=True, text=True, cwd=REPO, timeout=30,
                       env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert p.returncode == 1
    assert p.stderr.strip().splitlines() == [
        "controllers: --cluster-cidr: '10.300.0.0/16' does not appear to be an IPv4 or IPv6 network"]
