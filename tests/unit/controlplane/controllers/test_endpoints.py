"""Endpoints and EndpointSlices from a Service's pods: named ports, ready / not ready / terminating,
the managed-by label, at most 100 endpoints per slice, removal with the Service."""

import asyncio
import json

import pytest

from apiclient import PODS, ApiClient, load_kubeconfig
from tests.unit.controlplane.controllers.conftest import get_json, items, maybe_json, wait_until


@pytest.fixture(scope="module", autouse=True)
def controllers(start_controllers):
    return start_controllers("--controllers=endpoint,endpointslice,garbagecollector")


def make_pods(server, prefix, n, *, app, port=8080, ready=True, ip_base=(10, 244, 1)):
    """Create n pods and give them an IP and readiness through the status API, as a kubelet would."""
    async def main():
        async with ApiClient(load_kubeconfig(server.kubeconfig)) as api:
            async def one(i):
                name = f"{prefix}-{i}"
                await api.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {
                    "name": name, "labels": {"app": app}}, "spec": {"nodeName": "node-1", "containers": [
                        {"name": "c", "image": "busybox", "ports": [{"name": "http", "containerPort": port}]}]}},
                    "default")
                ip = f"{ip_base[0]}.{ip_base[1]}.{ip_base[2] + i // 250}.{i % 250 + 2}"
                await api.patch(PODS, name, {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                                                        "conditions": [{"type": "Ready",
                                                                        "status": "True" if ready else "False"}]}},
                                "default", subresource="status")
            await asyncio.gather(*(one(i) for i in range(n)))
    asyncio.run(main())


SVC = """
apiVersion: v1
kind: Service
metadata: {name: %(name)s, labels: {tier: front}}
spec:
  selector: {app: %(app)s}
  ports: [{name: web, port: 80, targetPort: http}]
"""


def slices_of(kubectl, svc):
    return items(kubectl, "endpointslices", "-l", f"kubernetes.io/service-name={svc}")


def test_endpoints_and_slices_follow_pods(kubectl, server):
    make_pods(server, "w", 2, app="web")
    make_pods(server, "wn", 1, app="web", ready=False, ip_base=(10, 244, 9))
    kubectl("apply", "-f", "-", input=SVC % {"name": "web", "app": "web"})
    svc = get_json(kubectl, "get", "svc", "web")

    def endpoints():
        ep = maybe_json(kubectl, "get", "endpoints", "web") or {}
        return ep if ep.get("subsets") and len(ep["subsets"][0].get("addresses") or []) == 2 and \
            len(ep["subsets"][0].get("notReadyAddresses") or []) == 1 and ep else None
    ep = wait_until(endpoints, what="Endpoints with 2 ready + 1 not ready")
    sub = ep["subsets"][0]
    assert sub["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]  # the named port resolved
    assert sorted(a["ip"] for a in sub["addresses"]) == ["10.244.1.2", "10.244.1.3"]
    assert sub["addresses"][0]["targetRef"]["kind"] == "Pod" and sub["addresses"][0]["nodeName"] == "node-1"
    assert ep["metadata"]["labels"]["tier"] == "front"

    sl = wait_until(lambda: (s := slices_of(kubectl, "web")) and len(s[0].get("endpoints") or []) == 3 and s,
                    what="a slice with 3 endpoints")
    assert len(sl) == 1
    s = sl[0]
    assert s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
    assert s["metadata"]["ownerReferences"][0]["uid"] == svc["metadata"]["uid"]
    assert s["addressType"] == "IPv4" and s["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]
    conds = {e["addresses"][0]: e["conditions"] for e in s["endpoints"]}
    assert conds["10.244.1.2"] == {"ready": True, "serving": True, "terminating": False}
    assert conds["10.244.9.2"] == {"ready": False, "serving": False, "terminating": False}

    # a terminating pod (held by a finalizer) stays in the slice, marked so; leaves Endpoints
    kubectl("patch", "pod", "w-0", "--type=merge", "-p", '{"metadata":{"finalizers":["example.com/hold"]}}')
    kubectl("delete", "pod", "w-0", "--wait=false")

    def terminating():
        for e in slices_of(kubectl, "web")[0]["endpoints"]:
            if e["targetRef"]["name"] == "w-0" and e["conditions"]["terminating"]:
                return e["conditions"]
    assert wait_until(terminating, what="w-0 terminating") == {"ready": False, "serving": True, "terminating": True}
    wait_until(lambda: len(get_json(kubectl, "get", "endpoints", "web")["subsets"][0]["addresses"]) == 1,
               what="w-0 out of Endpoints")
    kubectl("patch", "pod", "w-0", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')

    kubectl("delete", "svc", "web")
    wait_until(lambda: not slices_of(kubectl, "web") and
               kubectl.run("get", "endpoints", "web", check=False).returncode == 1,
               what="Endpoints and slices removed with the Service")


def test_hundred_per_slice_and_port_groups(kubectl, server):
    make_pods(server, "m", 150, app="many", ip_base=(10, 245, 0))
    make_pods(server, "alt", 1, app="many", port=9090, ip_base=(10, 246, 0))  # same name, other number
    kubectl("apply", "-f", "-", input=SVC % {"name": "many", "app": "many"})

    def sizes():
        by_port = {}
        for s in slices_of(kubectl, "many"):
            by_port.setdefault(s["ports"][0]["port"], []).append(len(s["endpoints"]))
        return by_port if sum(sum(v) for v in by_port.values()) == 151 else None
    by_port = wait_until(sizes, what="151 endpoints in slices")
    assert sorted(by_port[8080]) == [50, 100] and by_port[9090] == [1]


def test_service_without_selector_left_alone(kubectl):
    kubectl("create", "service", "clusterip", "manual", "--tcp=80:80")
    kubectl("patch", "svc", "manual", "--type=json", "-p", '[{"op":"remove","path":"/spec/selector"}]')
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Endpoints", "metadata": {
        "name": "manual"}, "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 80}]}]}))
    import time
    time.sleep(1)
    assert get_json(kubectl, "get", "endpoints", "manual")["subsets"][0]["addresses"] == [{"ip": "192.0.2.1"}]
    assert not slices_of(kubectl, "manual")
    # the API server's own `kubernetes` Service keeps its endpoints
    assert get_json(kubectl, "get", "endpoints", "kubernetes")["subsets"]
