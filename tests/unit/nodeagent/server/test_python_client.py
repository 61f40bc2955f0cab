"""The official Python client (kubernetes 37) reaches the kubelet API through the API server with
its own protocols: logs over plain HTTP, exec over a WebSocket channel protocol, port-forward over
the kubelet's v4 WebSocket port-forward protocol (not kubectl's SPDY tunnel)."""

from __future__ import annotations

import pytest

kubernetes = pytest.importorskip("kubernetes")
from kubernetes.stream import portforward, stream  # noqa: E402


@pytest.fixture(scope="module")
def core(cluster):
    api_client = kubernetes.config.new_client_from_config(str(cluster.server.kubeconfig))
    yield kubernetes.client.CoreV1Api(api_client)
    api_client.close()


def test_logs(cluster, core):
    cluster.runtime.write_log("c-app", "seen by the python client")
    text = core.read_namespaced_pod_log("web", "default", tail_lines=1)
    assert text == "seen by the python client\n"


def test_exec_and_exit_code(cluster, core):
    resp = stream(core.connect_get_namespaced_pod_exec, "web", "default",
                  command=["sh", "-c", "echo from-python; exit 4"], stdout=True, stderr=True,
                  stdin=False, tty=False, _preload_content=False)
    resp.run_forever(timeout=20)
    assert "from-python" in resp.read_stdout()
    assert resp.returncode == 4


def test_port_forward(cluster, core):
    pf = portforward(core.connect_get_namespaced_pod_portforward, "web", "default",
                     ports=str(cluster.http_port))
    sock = pf.socket(cluster.http_port)
    sock.setblocking(True)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n")
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    assert data.startswith(b"HTTP/1.0 200") and data.endswith(b"hello from the pod\n")
    assert pf.error(cluster.http_port) is None
