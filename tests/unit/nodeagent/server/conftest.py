"""A real API server process, our kubelet API (on a fake runtime) on 127.0.0.1, and a Node object
that points the one at the other — so the real kubectl 1.37 goes kubectl → API server → kubelet,
as on a cluster.

The kubelet server runs in a thread of the test process with its own event loop; its serving
certificate is signed by the API server's CA (the all-in-one arrangement) and it accepts only
clients with a certificate from that CA — the API server's kubelet-client certificate.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import ssl
import threading
import urllib.request
from pathlib import Path

import pytest

from nodeagent.cri.api import ContainerState
from nodeagent.server import KubeletServer, kubelet_tls
from tests.apiserver import Kubectl, start_server
from tests.unit.nodeagent.server.fakeruntime import FakeRuntime

NODE = "fake-node"


def pod_object(name: str, uid: str, containers: dict[str, tuple[str, str | None]], port: int = 0) -> dict:
    """containers: name → (current container id, previous container id or None)."""
    spec = {"nodeName": NODE, "containers": [
        {"name": n, "image": "busybox", "stdin": True,
         **({"ports": [{"containerPort": port}]} if port else {})} for n in containers]}
    statuses = []
    for n, (cur, prev) in containers.items():
        cs = {"name": n, "ready": True, "restartCount": 1 if prev else 0, "image": "busybox",
              "imageID": "sha256:0", "containerID": f"fake://{cur}",
              "state": {"running": {"startedAt": "2026-12-06T00:00:00Z"}}, "lastState": {}}
        if prev:
            cs["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error",
                                              "containerID": f"fake://{prev}"}}
        statuses.append(cs)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": uid},
            "spec": spec,
            "status": {"phase": "Running", "podIP": "127.0.0.1", "hostIP": "127.0.0.1",
                       "containerStatuses": statuses}}


class Cluster:
    def __init__(self, server, runtime: FakeRuntime, kubelet: KubeletServer, loop, kubectl: Kubectl,
                 http_port: int):
        self.server, self.runtime, self.kubelet, self.loop = server, runtime, kubelet, loop
        self.kubectl, self.http_port = kubectl, http_port

    def call(self, coro_or_fn):
        """Run something on the kubelet's loop (the fake runtime lives there)."""
        if asyncio.iscoroutine(coro_or_fn):
            return asyncio.run_coroutine_threadsafe(coro_or_fn, self.loop).result(10)
        done = threading.Event()
        out = []
        self.loop.call_soon_threadsafe(lambda: (out.append(coro_or_fn()), done.set()))
        done.wait(10)
        return out[0] if out else None


def _api(server, method: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(server.url + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {server.token}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=server.ssl_context(), timeout=10) as r:
        return json.loads(r.read())


BIG = bytes(range(256)) * (16 * 1024)   # 4 MiB, for a port-forward download


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = BIG if self.path == "/big" else b"hello from the pod\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base = tmp_path_factory.mktemp("kapi")
    server = start_server(base / "data")
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    http_port = web.server_address[1]

    pki_dir = base / "data" / "pki"
    tls = kubelet_tls(base / "agent", NODE, ["127.0.0.1"], pki_dir / "ca.crt", pki_dir / "ca.key")
    runtime = FakeRuntime(base / "logs")
    (base / "logs").mkdir()

    runtime.add_sandbox("sb-web", "web", "default", "uid-web")
    runtime.add_container("c-app-0", "app", "sb-web", 0, ContainerState.EXITED)
    runtime.add_container("c-app", "app", "sb-web", 1)
    runtime.add_sandbox("sb-att", "attachme", "default", "uid-att")
    runtime.add_container("c-main", "main", "sb-att")
    runtime.add_sandbox("sb-two", "two", "default", "uid-two")
    runtime.add_container("c-a", "a", "sb-two")
    runtime.add_container("c-b", "b", "sb-two")
    pods = [pod_object("web", "uid-web", {"app": ("c-app", "c-app-0")}, http_port),
            pod_object("attachme", "uid-att", {"main": ("c-main", None)}),
            pod_object("two", "uid-two", {"a": ("c-a", None), "b": ("c-b", None)})]

    loop = asyncio.new_event_loop()
    kubelet = KubeletServer(runtime, lambda: pods, tls=tls,
                            host="127.0.0.1", port=0, node_name=NODE,
                            configz={"kind": "KubeletConfiguration", "maxPods": 110})
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(kubelet.start())
        runtime.start_main("c-main", ["sh", "-c", 'while read l; do echo "echo:$l"; done'])
        started.set()
        loop.run_forever()
        loop.run_until_complete(kubelet.stop())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(20), "kubelet server did not start"

    _api(server, "POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}})
    node = _api(server, "GET", f"/api/v1/nodes/{NODE}")
    node["status"] = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                                    {"type": "Hostname", "address": NODE}],
                      "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet.port}},
                      "conditions": [{"type": "Ready", "status": "True"}]}
    _api(server, "PUT", f"/api/v1/nodes/{NODE}/status", node)
    for p in pods:
        created = _api(server, "POST", "/api/v1/namespaces/default/pods",
                       {k: v for k, v in p.items() if k != "status"})
        created["status"] = p["status"]
        _api(server, "PUT", f"/api/v1/namespaces/default/pods/{p['metadata']['name']}/status", created)

    kubectl = Kubectl(server, base / "kubecache")
    yield Cluster(server, runtime, kubelet, loop, kubectl, http_port)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    runtime.stop_mains()
    web.shutdown()
    web.server_close()
    server.stop()


@pytest.fixture
def kubectl(cluster) -> Kubectl:
    return cluster.kubectl


def kubelet_client_context(cluster) -> ssl.SSLContext:
    """What the API server presents to a kubelet (its kubelet-client certificate)."""
    pki = Path(cluster.server.data_dir) / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.check_hostname = False
    ctx.load_cert_chain(pki / "apiserver-kubelet-client.crt", pki / "apiserver-kubelet-client.key")
    return ctx
