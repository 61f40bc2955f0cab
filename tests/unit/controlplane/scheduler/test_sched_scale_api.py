"""Many pods at once against a real API server: 1,050 pods created concurrently on 10 nodes with
room for exactly 1,000 — no node over-committed (the cache counts pods still being bound), the
rest Unschedulable; `kubectl describe nodes` shows each node's cpu requests at exactly 100%."""

import asyncio
import re
from collections import Counter

from apiclient import PODS, ApiClient, load_kubeconfig

async def create_pods(kubeconfig, names, cpu="100m", concurrency=32):
    sem = asyncio.Semaphore(concurrency)
    async with ApiClient(load_kubeconfig(kubeconfig)) as api:
        async def one(name):
            async with sem:
                await api.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                                        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {
                                            "requests": {"cpu": cpu, "memory": "64Mi"}}}]}}, "default")
        await asyncio.gather(*(one(n) for n in names))


def test_thousand_pods_at_once_never_overcommit(cluster, server, kubectl):
    for i in range(10):
        cluster.node(f"n{i:02d}", cpu="10", memory="64Gi", pods=110)
    asyncio.run(create_pods(server.kubeconfig, [f"p{i:04d}" for i in range(1050)]))

    def settled():
        pods = cluster.pods()
        bound = [p for p in pods if p["spec"].get("nodeName")]
        failed = [p for p in pods if any(c["type"] == "PodScheduled" and c["status"] == "False"
                                         for c in p["status"].get("conditions") or ())]
        return (bound, failed) if len(bound) == 1000 and len(failed) == 50 else None

    bound, failed = cluster.wait(settled, 180, "1,000 pods bound and 50 unschedulable")
    per_node = Counter(p["spec"]["nodeName"] for p in bound)
    assert per_node == {f"n{i:02d}": 100 for i in range(10)}  # 100 x 100m = the node's 10 cpus
    assert {c["message"] for p in failed for c in p["status"]["conditions"] if c["type"] == "PodScheduled"} == {
        "0/10 nodes are available: 10 Insufficient cpu. preemption: 0/10 nodes are available: "
        "10 No preemption victims found for incoming pod.."}
    described = kubectl("describe", "nodes")
    assert re.findall(r"Non-terminated Pods:\s+\((\d+) in total\)", described) == ["100"] * 10
    assert re.findall(r"^\s+cpu\s+(\S+ \(\d+%\))", described, re.M) == ["10 (100%)"] * 10
