"""The kubelet API's own face: who may connect, the read-only endpoints, the v4 channel protocol,
CRI log parsing, and that sessions leave no fds behind."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import aiohttp
import pytest

from nodeagent.server.logs import LogOptions, parse_record, tail_offset
from tests.unit.nodeagent.server.conftest import NODE, kubelet_client_context


def _get(cluster, path: str, ctx: ssl.SSLContext) -> tuple[int, bytes]:
    url = f"https://127.0.0.1:{cluster.kubelet.port}{path}"
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# ---- who may connect ----

def test_only_clients_with_a_cluster_ca_certificate_get_in(cluster, tmp_path):
    assert _get(cluster, "/healthz", kubelet_client_context(cluster)) == (200, b"ok")

    anonymous = ssl.create_default_context()
    anonymous.check_hostname, anonymous.verify_mode = False, ssl.CERT_NONE
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        _get(cluster, "/healthz", anonymous)

    # a client certificate from some other CA is refused as well
    key, crt = tmp_path / "x.key", tmp_path / "x.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "1", "-subj", "/CN=intruder"],
                   check=True, capture_output=True)
    stranger = ssl.create_default_context()
    stranger.check_hostname, stranger.verify_mode = False, ssl.CERT_NONE
    stranger.load_cert_chain(crt, key)
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        _get(cluster, "/healthz", stranger)


# ---- read-only endpoints, through nodes/proxy ----

def test_pods_metrics_and_summary_through_nodes_proxy(cluster, kubectl):
    assert kubectl("get", "--raw", f"/api/v1/nodes/{NODE}/proxy/healthz") == "ok"
    pods = json.loads(kubectl("get", "--raw", f"/api/v1/nodes/{NODE}/proxy/pods"))
    assert pods["kind"] == "PodList"
    assert {p["metadata"]["name"] for p in pods["items"]} == {"web", "attachme", "two"}

    metrics = kubectl("get", "--raw", f"/api/v1/nodes/{NODE}/proxy/metrics")
    assert "# TYPE kubelet_running_pods gauge" in metrics
    assert "kubelet_running_pods 3" in metrics
    assert 'kubelet_running_containers{container_state="running"}' in metrics
    assert f'kubelet_node_name{{node="{NODE}"}} 1' in metrics

    resource = kubectl("get", "--raw", f"/api/v1/nodes/{NODE}/proxy/metrics/resource")
    assert 'container_memory_working_set_bytes{container="app",namespace="default",pod="web"} 4194304' in resource
    assert "node_cpu_usage_seconds_total" in resource

    summary = json.loads(kubectl("get", "--raw", f"/api/v1/nodes/{NODE}/proxy/stats/summary"))
    assert summary["node"]["nodeName"] == NODE
    assert summary["node"]["memory"]["workingSetBytes"] > 0
    web = next(p for p in summary["pods"] if p["podRef"]["name"] == "web")
    assert web["containers"][0]["name"] == "app"
    assert web["containers"][0]["cpu"]["usageCoreNanoSeconds"] == 1_500_000_000
    assert web["memory"]["workingSetBytes"] == 4 << 20
    # usageNanoCores (what metrics-server reads) from the second sample on: the fake's cpu stands still
    again = json.loads(kubectl("get", "--raw", f"/api/v1/nodes/{NODE}/proxy/stats/summary"))
    assert again["node"]["cpu"]["usageNanoCores"] >= 0
    web = next(p for p in again["pods"] if p["podRef"]["name"] == "web")
    assert web["cpu"]["usageNanoCores"] == 0 and web["containers"][0]["cpu"]["usageNanoCores"] == 0


def test_configz_through_nodes_proxy(cluster, kubectl):
    """`kubectl get --raw /api/v1/nodes/<n>/proxy/configz`: the kubelet's configuration."""
    got = json.loads(kubectl("get", "--raw", f"/api/v1/nodes/{NODE}/proxy/configz"))
    assert got == {"kubeletconfig": {"kind": "KubeletConfiguration", "maxPods": 110}}


def test_kubelet_configuration_says_what_the_agent_uses(tmp_path):
    from nodeagent.eviction import parse_config
    from nodeagent.imagegc import ImageGCPolicy
    from nodeagent.kuberuntime import NodeFacts
    from nodeagent.node import AgentConfig, kubelet_configuration
    c = kubelet_configuration(AgentConfig(data_dir=str(tmp_path), cluster_ca="/ca.crt"),
                              NodeFacts(name="n", hostname="n", memory_capacity=1 << 30,
                                        cluster_dns=("10.96.0.10",)),
                              "10.244.1.0/24", parse_config(), ImageGCPolicy())
    assert c["kind"] == "KubeletConfiguration" and c["apiVersion"] == "kubelet.config.k8s.io/v1beta1"
    # the kubelet's default hard thresholds (eviction_manager's DefaultEvictionHard), no soft ones
    assert c["evictionHard"] == {"memory.available": "100Mi", "nodefs.available": "10%",
                                 "nodefs.inodesFree": "5%", "imagefs.available": "15%"}
    assert c["evictionSoft"] == {} and c["evictionMaxPodGracePeriod"] == 0
    assert (c["imageGCHighThresholdPercent"], c["imageGCLowThresholdPercent"]) == (85, 80)
    assert c["imageMinimumGCAge"] == "2m0s" and c["maxPods"] == 110 and c["port"] == 10250
    assert c["clusterDNS"] == ["10.96.0.10"] and c["clusterDomain"] == "cluster.local"
    assert c["podCIDR"] == "10.244.1.0/24" and c["authentication"]["x509"]["clientCAFile"] == "/ca.crt"


def test_cpu_rate_over_the_sample_window():
    from nodeagent.server.stats import CpuRates
    r = CpuRates()
    assert r.rate("x", 1_000_000_000, now=10.0) is None           # first sample: no rate yet
    assert r.rate("x", 1_500_000_000, now=12.0) == 250_000_000     # 0.5 s of CPU in 2 s: 250m
    assert r.rate("x", 100, now=13.0) is None                      # counter went back: restarted


def test_kubelet_errors_reach_kubectl_as_status(cluster, kubectl):
    p = kubectl.run("get", "--raw", f"/api/v1/nodes/{NODE}/proxy/containerLogs/default/nosuch/c",
                    check=False)
    assert p.returncode != 0 and 'pod "nosuch" not found' in p.stderr
    p = kubectl.run("get", "--raw", "/api/v1/nodes/nosuchnode/proxy/healthz", check=False)
    assert p.returncode != 0 and 'nodes "nosuchnode" not found' in p.stderr


# ---- the v4 channel protocol (older clients), spoken directly ----

def test_v4_channel_protocol_exit_code(cluster):
    async def run() -> tuple[str, bytes, dict]:
        ctx = kubelet_client_context(cluster)
        url = (f"https://127.0.0.1:{cluster.kubelet.port}/exec/default/web/app"
               "?command=sh&command=-c&command=echo+v4%3Bexit+7&output=1&error=1")
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(url, protocols=("v4.channel.k8s.io",), ssl=ctx) as ws:
                out, status = b"", {}
                async for msg in ws:
                    if msg.data[0] == 1:
                        out += msg.data[1:]
                    elif msg.data[0] == 3:
                        status = json.loads(msg.data[1:])
                return ws.protocol, out, status
    proto, out, status = asyncio.run(run())
    assert proto == "v4.channel.k8s.io"
    assert out == b"v4\n"
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "7"}]


# ---- CRI log files ----

def test_parse_record():
    r = parse_record(b"2026-12-06T01:02:03.123456789Z stderr P half a line ")
    assert (r.stream, r.partial, r.content) == ("stderr", True, b"half a line ")
    assert parse_record(b"2026-12-06T01:02:03Z stdout F").content == b""
    assert parse_record(b"garbage") is None


def test_partial_records_make_one_line(tmp_path):
    from nodeagent.server.logs import stream_file
    p = tmp_path / "log"
    p.write_bytes(b"2026-12-06T01:02:03.5Z stdout P first half, \n"
                  b"2026-12-06T01:02:04Z stdout F second half\n"
                  b"2026-12-06T01:02:05Z stderr F next\n")

    async def read(**opts) -> bytes:
        out = bytearray()

        async def write(b: bytes) -> None:
            out.extend(b)

        async def running() -> bool:
            return False
        await stream_file(str(p), LogOptions(**opts), write, running)
        return bytes(out)
    assert asyncio.run(read()) == b"first half, second half\nnext\n"
    assert asyncio.run(read(timestamps=True)) == (b"2026-12-06T01:02:03.5Z first half, second half\n"
                                                  b"2026-12-06T01:02:05Z next\n")
    assert asyncio.run(read(tail_lines=1)) == b"next\n"


def test_tail_offset(tmp_path):
    p = tmp_path / "log"
    lines = [f"2026-12-06T01:02:03Z stdout F line {i}\n".encode() for i in range(5000)]
    p.write_bytes(b"".join(lines))
    for n in (0, 1, 3, 4999, 5000, 9000):
        off = tail_offset(str(p), n)
        assert p.read_bytes()[off:] == b"".join(lines[len(lines) - min(n, 5000):] if n else [])


def test_log_options_bad_input_names_the_field():
    class Q(dict):
        def getall(self, k, d=()):
            return [self[k]] if k in self else list(d)
    with pytest.raises(Exception, match="tailLines"):
        LogOptions.from_query(Q(tailLines="x"))
    with pytest.raises(Exception, match="sinceTime"):
        LogOptions.from_query(Q(sinceTime="yesterday"))
    with pytest.raises(Exception, match="at most one of sinceTime or sinceSeconds"):
        LogOptions.from_query(Q(sinceTime="2026-01-01T00:00:00Z", sinceSeconds="5"))


# ---- no leaks ----

def test_sessions_leave_no_fds_behind(cluster, kubectl):
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))
    kubectl("exec", "web", "--", "true")   # warm up: connection pools, lazily created sockets
    before = open_fds()
    for _ in range(10):
        kubectl("exec", "-i", "web", "--", "cat", input="x\n")
        kubectl.run("exec", "web", "--", "sh", "-c", "exit 2", check=False)
        kubectl("logs", "web", "--tail=1")
    for _ in range(3):
        proc = kubectl.popen("port-forward", "pod/web", f":{cluster.http_port}")
        line = proc.stdout.readline()
        local = int(line.split("127.0.0.1:")[1].split(" ")[0])
        for _ in range(3):
            urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10).read()
        proc.terminate()
        proc.communicate(timeout=10)
    deadline = time.monotonic() + 10   # the kubelet notices kubectl's exit asynchronously
    while open_fds() > before + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_fds() <= before + 2, "exec/log/port-forward sessions leaked file descriptors"


def test_a_joining_agent_serves_with_a_self_signed_certificate(cluster, tmp_path):
    """`nodeagent agent` has no CA key: it makes its own serving certificate (the kubelet's
    default), and still lets in only the API server's client certificate."""
    from nodeagent.server import KubeletServer, kubelet_tls
    from tests.unit.nodeagent.server.fakeruntime import FakeRuntime

    ca = cluster.server.data_dir / "pki" / "ca.crt"
    tls = kubelet_tls(tmp_path / "agent", "joiner", ["127.0.0.1"], ca)
    text = subprocess.run(["openssl", "x509", "-in", str(tls.cert), "-noout", "-subject", "-issuer",
                           "-ext", "subjectAltName"], capture_output=True, text=True, check=True).stdout
    subject = next(ln for ln in text.splitlines() if ln.startswith("subject="))
    issuer = next(ln for ln in text.splitlines() if ln.startswith("issuer="))
    assert "CN = joiner@" in subject and subject[len("subject="):] == issuer[len("issuer="):]
    assert "IP Address:127.0.0.1" in text and "DNS:joiner" in text
    assert kubelet_tls(tmp_path / "agent", "joiner", ["127.0.0.1"], ca).cert.read_bytes() == \
        tls.cert.read_bytes(), "made once, then reused"

    async def run() -> tuple[int, str]:
        server = KubeletServer(FakeRuntime(tmp_path), lambda: [], tls=tls, host="127.0.0.1", port=0)
        await server.start()
        try:
            ctx = kubelet_client_context(cluster)
            ctx.verify_mode = ssl.CERT_NONE   # as the API server: no CA vouches for this one
            async with aiohttp.ClientSession() as s:
                async with s.get(f"https://127.0.0.1:{server.port}/healthz", ssl=ctx) as r:
                    return r.status, await r.text()
        finally:
            await server.stop()
    assert asyncio.run(run()) == (200, "ok")


def test_a_node_whose_kubelet_is_down(cluster, kubectl):
    """The API server answers for an unreachable kubelet with a 503 naming it, as upstream's
    "error dialing backend"; a pod on no node gets upstream's 400."""
    import socket

    from tests.unit.nodeagent.server.conftest import _api
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    _api(cluster.server, "POST", "/api/v1/nodes", {"metadata": {"name": "ghost"}})
    node = _api(cluster.server, "GET", "/api/v1/nodes/ghost")
    node["status"] = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                      "daemonEndpoints": {"kubeletEndpoint": {"Port": dead}}}
    _api(cluster.server, "PUT", "/api/v1/nodes/ghost/status", node)
    for name, node_name in (("haunted", "ghost"), ("homeless", None)):
        _api(cluster.server, "POST", "/api/v1/namespaces/default/pods", {
            "metadata": {"name": name},
            "spec": {**({"nodeName": node_name} if node_name else {}),
                     "containers": [{"name": "c", "image": "busybox"}]}})
    p = kubectl.run("logs", "haunted", check=False)
    assert p.returncode != 0 and "error dialing backend" in p.stderr and f"127.0.0.1:{dead}" in p.stderr
    p = kubectl.run("get", "--raw", "/api/v1/namespaces/default/pods/homeless/log", check=False)
    assert p.returncode != 0 and "pod homeless does not have a host assigned" in p.stderr
