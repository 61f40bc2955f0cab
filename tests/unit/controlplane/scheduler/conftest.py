"""Fixtures for scheduler tests against a real API server: the scheduler as its own process
(`python -m controlplane.scheduler`, as kube-scheduler runs), fake Nodes created through the API,
and a small synchronous JSON client for what a test sets up or waits on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.apiserver import start_server

REPO = Path(__file__).resolve().parents[4]


class Api:
    def __init__(self, server):
        self.server, self.ctx, self.token = server, server.ssl_context(), server.token

    def call(self, method: str, path: str, body=None, ctype="application/json"):
        req = urllib.request.Request(self.server.url + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {self.token}", "Content-Type": ctype})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=30) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            if e.code == 404 and method in ("GET", "DELETE"):
                return None
            raise AssertionError(f"{method} {path}: {e.code} {e.read()[:300]!r}") from None

    def node(self, name, cpu="4", memory="8Gi", pods=110, labels=None, taints=None, unschedulable=False):
        alloc = {"cpu": cpu, "memory": memory, "pods": str(pods)}
        self.call("POST", "/api/v1/nodes", {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable}})
        self.call("PATCH", f"/api/v1/nodes/{name}/status", {"status": {
            "allocatable": alloc, "capacity": alloc,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}},
            "application/merge-patch+json")

    def pod(self, name, ns="default"):
        return self.call("GET", f"/api/v1/namespaces/{ns}/pods/{name}")

    def pods(self, ns="default"):
        return self.call("GET", f"/api/v1/namespaces/{ns}/pods")["items"]

    def create_pod(self, manifest: dict, ns="default"):
        return self.call("POST", f"/api/v1/namespaces/{ns}/pods", manifest)

    def events(self, name, ns="default"):
        items = self.call("GET", f"/api/v1/namespaces/{ns}/events?fieldSelector=involvedObject.name%3D{name}")["items"]
        return [(e["type"], e["reason"], e["message"]) for e in items]

    def wait(self, pred, timeout=30.0, what="condition"):
        deadline = time.monotonic() + timeout
        while True:
            got = pred()
            if got:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.1)

    def bound(self, name, ns="default", timeout=30.0) -> str:
        return self.wait(lambda: (self.pod(name, ns) or {}).get("spec", {}).get("nodeName"), timeout,
                         f"pod {ns}/{name} to be bound")

    def scheduled_condition(self, name, ns="default", timeout=30.0) -> dict:
        def cond():
            for c in ((self.pod(name, ns) or {}).get("status") or {}).get("conditions") or ():
                if c["type"] == "PodScheduled" and c["status"] == "False":
                    return c
            return None
        return self.wait(cond, timeout, f"PodScheduled=False on {ns}/{name}")

    def reset(self):
        """Remove every pod (at once, as a kubelet confirming would) and node."""
        for ns in ("default", "other"):
            for p in self.call("GET", f"/api/v1/namespaces/{ns}/pods")["items"]:
                self.call("DELETE", f"/api/v1/namespaces/{ns}/pods/{p['metadata']['name']}",
                          {"gracePeriodSeconds": 0})
        for n in self.call("GET", "/api/v1/nodes")["items"]:
            self.call("DELETE", f"/api/v1/nodes/{n['metadata']['name']}")


def start_scheduler(server, log: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "controlplane.scheduler", "--kubeconfig",
                                 str(server.kubeconfig), "-v", *extra], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _server_flags() -> list[str]:
    """`--no-scheduler` once `nodeagent server` runs a scheduler itself: these tests start theirs."""
    out = subprocess.run([sys.executable, "-m", "nodeagent", "server", "--help"], cwd=REPO,
                         capture_output=True, text=True).stdout
    return ["--no-scheduler"] if "--no-scheduler" in out else []


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("apiserver") / "data", None, *_server_flags())
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def api(server):
    a = Api(server)
    a.call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    return a


@pytest.fixture(scope="module")
def scheduler(server, api, tmp_path_factory):
    log = tmp_path_factory.mktemp("sched") / "scheduler.log"
    proc = start_scheduler(server, log)
    # ready once it holds the Lease
    api.wait(lambda: ((api.call("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler")
                       or {}).get("spec") or {}).get("holderIdentity"), 30, "the scheduler's Lease")
    yield proc
    stop(proc)
    print(log.read_text()[-5000:])


@pytest.fixture
def cluster(api, scheduler):
    api.reset()
    yield api
    assert scheduler.poll() is None, "the scheduler process died"
