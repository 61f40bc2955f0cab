#!/usr/bin/env python3
"""API server benchmark: write latency and throughput, watch fan-out, large LISTs.

Prints median and p99 of each measurement, and for writes the ratio against the named peer,
**etcd** (Debian etcd-server, the store under every real kube-apiserver), measured in the same
run on the same machine: a bare `put` through etcd's JSON gateway is the floor a full API create
(decode, default, validate, store, fan out, encode) is compared with. etcd's default is the same
durability as ours: fsync before acknowledging.

    .venv/bin/python bench/apiserver.py [--quick]

Targets from issue 6 (printed, never asserted): p99 create latency at 20 writes/s <= 50 ms;
>= 300 creates/s from one client; 100 watchers all see an event, p99 <= 100 ms; LIST of 5,000
pods as JSON and as Table <= 1 s. Issue 12: server-side apply of an unchanged 50-container
Deployment (p50, p99; every apply merges, compares and finds nothing to write), and a CRD case: create
and LIST 5,000 custom resources. Everything runs
on 127.0.0.1 and stops by itself. `--cases create,ssa` (or `--cases crd`) runs only those (a before/after
comparison of one case runs it alone, back to back).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402

from apiclient import CONFIGMAPS, PODS, ApiClient, Resource, load_kubeconfig  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def line(name: str, values_ms: list[float], target: str = "", peer: list[float] | None = None) -> None:
    med, p99 = statistics.median(values_ms), pct(values_ms, 99)
    text = f"{name:<44} median {med:8.2f} ms   p99 {p99:8.2f} ms"
    if peer:
        text += f"   (etcd: median {statistics.median(peer):.2f} ms, p99 {pct(peer, 99):.2f} ms; " \
                f"ratio {med / statistics.median(peer):.1f}x / {p99 / pct(peer, 99):.1f}x)"
    print(text + (f"   target {target}" if target else ""), flush=True)


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"],
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}


# ---- the peer: etcd ----

class Etcd:
    def __init__(self, tmp: Path):
        self.port, self.peer_port = free_port(), free_port()
        self.proc = subprocess.Popen(
            ["etcd", "--data-dir", str(tmp / "etcd"), "--listen-client-urls", f"http://127.0.0.1:{self.port}",
             "--advertise-client-urls", f"http://127.0.0.1:{self.port}",
             "--listen-peer-urls", f"http://127.0.0.1:{self.peer_port}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer_port}",
             "--initial-cluster", f"default=http://127.0.0.1:{self.peer_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}/v3/kv/put"

    async def wait(self, session):
        for _ in range(100):
            try:
                await self.put(session, "/ping", b"1")
                return
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        raise RuntimeError("etcd did not start")

    async def put(self, session, key: str, value: bytes) -> None:
        body = {"key": base64.b64encode(key.encode()).decode(), "value": base64.b64encode(value).decode()}
        async with session.post(self.url, json=body) as r:
            await r.read()
            r.raise_for_status()

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


# ---- measurements ----

def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process: a cost that, unlike wall time, other load on a
    shared machine does not inflate (much)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def paced(op, rate: float, n: int) -> list[float]:
    """Start op(i) every 1/rate seconds (open loop); latencies in ms."""
    lat: list[float] = []

    async def one(i):
        t = time.perf_counter()
        await op(i)
        lat.append((time.perf_counter() - t) * 1000)

    tasks = []
    start = time.perf_counter()
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return lat


async def throughput(op, n: int, concurrency: int) -> tuple[float, list[float]]:
    lat: list[float] = []
    it = iter(range(n))

    async def worker():
        for i in it:
            t = time.perf_counter()
            await op(i)
            lat.append((time.perf_counter() - t) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - t0), lat


async def watchers_see(api: ApiClient, cfg, n_watchers: int, n_events: int) -> list[float]:
    """For each event: time from the create's acknowledgement... to the last of n watchers."""
    clients = [ApiClient(cfg) for _ in range(max(1, n_watchers // 25))]  # ~25 streams per pool
    seen: dict[str, list[float]] = {}
    _, rv = await api.list_all(CONFIGMAPS, "default")
    ready = asyncio.Event()
    started = 0

    async def watch(client):
        nonlocal started
        started += 1
        if started == n_watchers:
            ready.set()
        async for ev in client.watch(CONFIGMAPS, "default", resource_version=rv, timeout_seconds=120,
                                     allow_bookmarks=False):
            seen.setdefault(ev.object["metadata"]["name"], []).append(time.perf_counter())

    tasks = [asyncio.create_task(watch(clients[i % len(clients)])) for i in range(n_watchers)]
    await ready.wait()
    await asyncio.sleep(1.0)  # let every stream connect
    out = []
    for i in range(n_events):
        name = f"fan-{i}"
        t = time.perf_counter()
        await api.create(CONFIGMAPS, {"metadata": {"name": name}, "data": {"i": str(i)}}, "default")
        for _ in range(2000):
            if len(seen.get(name, ())) >= n_watchers:
                break
            await asyncio.sleep(0.001)
        out.append((max(seen.get(name, [time.perf_counter()])) - t) * 1000)
        await asyncio.sleep(0.02)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for c in clients:
        await c.close()
    return out


async def timed_get(session, url: str, headers: dict, n: int) -> tuple[list[float], int]:
    lat, size = [], 0
    for _ in range(n):
        t = time.perf_counter()
        async with session.get(url, headers=headers) as r:
            body = await r.read()
            r.raise_for_status()
        lat.append((time.perf_counter() - t) * 1000)
        size = len(body)
    return lat, size


# The CRD case: an operator-style CRD (schema with defaults, status subresource, printer columns)
# and 5,000 of its objects, created and listed through the same generic registry as pods.
BENCH_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "benchapps.bench.example.com"},
    "spec": {"group": "bench.example.com", "scope": "Namespaced",
             "names": {"plural": "benchapps", "singular": "benchapp", "kind": "BenchApp"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "subresources": {"status": {}},
                           "additionalPrinterColumns": [
                               {"name": "Image", "type": "string", "jsonPath": ".spec.image"},
                               {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                               {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
                           "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                               "spec": {"type": "object", "required": ["image"], "properties": {
                                   "image": {"type": "string", "minLength": 1},
                                   "replicas": {"type": "integer", "minimum": 0, "default": 1},
                                   "env": {"type": "array", "items": {"type": "object", "properties": {
                                       "name": {"type": "string"}, "value": {"type": "string"}}}},
                                   "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}},
                               "status": {"type": "object", "properties": {
                                   "ready": {"type": "integer"}}}}}}}]}}
BENCH_APPS = Resource("bench.example.com", "v1", "benchapps", True)


def bench_app(name: str) -> dict:
    return {"apiVersion": "bench.example.com/v1", "kind": "BenchApp",
            "metadata": {"name": name, "labels": {"app": "bench"}},
            "spec": {"image": "registry.local/app:1.0", "env": [{"name": "A", "value": "1"}],
                     "config": {"level": "info", "limits": {"cpu": 2}}}}


async def crd_case(api: ApiClient, cfg, quick: bool) -> None:
    url = f"{cfg.server}/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    hdr = {"Authorization": f"Bearer {cfg.token}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=cfg.ssl_context())) as s:
        async with s.post(url, json=BENCH_CRD, headers=hdr) as r:
            assert r.status == 201, await r.text()
        total = 2000 if quick else 5000
        rate, lat = await throughput(lambda i: api.create(BENCH_APPS, bench_app(f"cr-{i}"), "default"),
                                     total, 16)
        line(f"create custom resource, 16 in flight ({total})", lat)
        print(f"{'  CR creates/s from one client':<44} {rate:8.0f} /s", flush=True)
        crs = f"{cfg.server}/apis/bench.example.com/v1/namespaces/default/benchapps"
        lat, size = await timed_get(s, crs, hdr, 5 if quick else 10)
        line(f"LIST {total:,} custom resources as JSON ({size / 1e6:.1f} MB)", lat, "<= 1000 ms")
        lat, size = await timed_get(s, crs, {**hdr, "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
                                    5 if quick else 10)
        line(f"LIST {total:,} custom resources as Table ({size / 1e6:.1f} MB)", lat, "<= 1000 ms")


def deployment(name: str, containers: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [
                                      {"name": f"c{i}", "image": f"registry.local/app:{i}",
                                       "ports": [{"containerPort": 8000 + i}],
                                       "env": [{"name": "INDEX", "value": str(i)}],
                                       "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}
                                      for i in range(containers)]}}}}


async def server_side_apply(cfg, n: int) -> list[float]:
    """Latencies of PATCH application/apply-patch+yaml of the same 50-container Deployment."""
    url = f"{cfg.server}/apis/apps/v1/namespaces/default/deployments/ssa-bench?fieldManager=bench"
    hdr = {"Authorization": f"Bearer {cfg.token}", "Content-Type": "application/apply-patch+yaml"}
    body = json.dumps(deployment("ssa-bench", 50)).encode()  # JSON is YAML
    lat = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=cfg.ssl_context())) as s:
        for i in range(n + 1):
            t = time.perf_counter()
            async with s.patch(url, data=body, headers=hdr) as r:
                await r.read()
                if r.status not in (200, 201):
                    raise RuntimeError(f"apply: HTTP {r.status}")
            if i:  # the first apply creates
                lat.append((time.perf_counter() - t) * 1000)
    return lat


CASES = ("paced", "create", "list", "watch", "ssa", "crd")


async def main(quick: bool, cases: set[str] = set(CASES)) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="apiserver-bench-"))
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "nodeagent", "server", "--data-dir", str(tmp / "data"),
                               "--listen", f"127.0.0.1:{port}"], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    etcd = Etcd(tmp) if shutil.which("etcd") else None
    try:
        kc = tmp / "data" / "admin.kubeconfig"
        for _ in range(300):
            if kc.exists():
                break
            await asyncio.sleep(0.1)
        cfg = load_kubeconfig(kc)
        async with ApiClient(cfg) as api, aiohttp.ClientSession() as plain:
            for _ in range(100):
                try:
                    await api.list(CONFIGMAPS, "default")
                    break
                except Exception:
                    await asyncio.sleep(0.1)
            if etcd:
                await etcd.wait(plain)
            print(f"nodeagent apiserver (HTTPS, SQLite WAL synchronous=FULL) vs etcd "
                  f"{'3.4 (HTTP JSON gateway)' if etcd else '(not installed: apt-get install etcd-server)'}; "
                  f"{os.cpu_count()} CPUs\n", flush=True)

            n = 100 if quick else 200
            if "paced" in cases:
                lat = await paced(lambda i: api.create(PODS, pod(f"paced-{i}"), "default"), 20, n)
                peer = await paced(lambda i: etcd.put(plain, f"/registry/pods/default/paced-{i}",
                                                      json.dumps(pod(f"paced-{i}")).encode()),
                                   20, n) if etcd else None
                line(f"create pod at 20 writes/s ({n})", lat, "p99 <= 50 ms", peer)

            if "ssa" in cases:
                n_ssa = 100 if quick else 300
                cpu = cpu_seconds(server.pid)
                lat = await server_side_apply(cfg, n_ssa)
                cpu = cpu_seconds(server.pid) - cpu
                line("server-side apply, unchanged 50-container Deployment", lat, "")
                print(f"{'  server CPU per apply':<44} {cpu / (n_ssa + 1) * 1000:8.2f} ms", flush=True)

            total = (1000 if quick else 3000) if "create" in cases else 0
            if total:
                cpu = cpu_seconds(server.pid)
                rate, lat = await throughput(lambda i: api.create(PODS, pod(f"tp-{i}"), "default"), total, 16)
                cpu = cpu_seconds(server.pid) - cpu
                peer_rate = peer_lat = None
                if etcd:
                    peer_rate, peer_lat = await throughput(
                        lambda i: etcd.put(plain, f"/registry/pods/default/tp-{i}",
                                           json.dumps(pod(f"tp-{i}")).encode()), total, 16)
                line(f"create pod, 16 in flight ({total})", lat, "", peer_lat)
                print(f"{'  creates/s from one client':<44} {rate:8.0f} /s" +
                      (f"   (etcd puts/s: {peer_rate:.0f}; ratio {rate / peer_rate:.2f}x)" if peer_rate else "") +
                      "   target >= 300/s", flush=True)
                print(f"{'  server CPU per create':<44} {cpu / total * 1000:8.2f} ms", flush=True)

            if "list" in cases:
                if total < 5000:
                    await throughput(lambda i: api.create(PODS, pod(f"fill-{i}"), "default"), 5000 - total, 16)
                url = f"{cfg.server}/api/v1/namespaces/default/pods"
                hdr = {"Authorization": f"Bearer {cfg.token}"}
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=cfg.ssl_context())) as s:
                    lat, size = await timed_get(s, url, hdr, 5 if quick else 10)
                    line(f"LIST 5,000 pods as JSON ({size / 1e6:.1f} MB)", lat, "<= 1000 ms")
                    lat, size = await timed_get(s, url, {**hdr, "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
                                                5 if quick else 10)
                    line(f"LIST 5,000 pods as Table ({size / 1e6:.1f} MB)", lat, "<= 1000 ms")

            if "watch" in cases:
                lat = await watchers_see(api, cfg, 100, 30 if quick else 60)
                line("100 watchers all see a create", lat, "p99 <= 100 ms")

            if "crd" in cases:
                await crd_case(api, cfg, quick)
    finally:
        server.terminate()
        try:  # the whole control plane (scheduler, controllers) has been seen to outlive SIGTERM
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if etcd:
            etcd.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer samples")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {CASES}")
    args = ap.parse_args()
    asyncio.run(main(args.quick, set(args.cases.split(","))))
