"""Objects every cluster has from the start, created by the API server itself (idempotently):

- the namespaces `default`, `kube-system`, `kube-public`, `kube-node-lease`;
- the two system PriorityClasses (system-node-critical, system-cluster-critical);
- the `kubernetes` Service in `default` (ClusterIP: the first address of the service range) and
  its Endpoints/EndpointSlice pointing at this server — how pods find the API.
"""

from __future__ import annotations

from controlplane.apiserver import admission
from controlplane.apiserver.errors import APIError
from controlplane.apiserver.objects import ObjectStore
from controlplane.apiserver.resources import REGISTRY

NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


async def ensure_defaults(store: ObjectStore, advertise_ip: str, port: int) -> None:
    ns = REGISTRY.lookup("", "v1", "namespaces")
    for name in NAMESPACES:
        if store.cache.get(ns.key(None, name)) is None:
            await _create(store, ns, None, {"metadata": {"name": name}})
    pcs = REGISTRY.lookup("scheduling.k8s.io", "v1", "priorityclasses")
    for pc in admission.system_priority_classes():
        if store.cache.get(pcs.key(None, pc["metadata"]["name"])) is None:
            await _create(store, pcs, None, pc)
    svc = REGISTRY.lookup("", "v1", "services")
    if store.cache.get(svc.key("default", "kubernetes")) is None:
        first = str(next(store.service_net.hosts()))
        await _create(store, svc, "default", {
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver",
                                                          "provider": "kubernetes"}},
            "spec": {"clusterIP": first, "ports": [{"name": "https", "port": 443,
                                                     "targetPort": port, "protocol": "TCP"}]}})
    eps = REGISTRY.lookup("", "v1", "endpoints")
    want_subsets = [{"addresses": [{"ip": advertise_ip}],
                     "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]
    cur = store.cache.get(eps.key("default", "kubernetes"))
    if cur is None:
        await _create(store, eps, "default", {"metadata": {"name": "kubernetes"}, "subsets": want_subsets})
    elif cur.obj.get("subsets") != want_subsets:
        await store.update(eps, "default", "kubernetes",
                           lambda o: {**o, "subsets": want_subsets, "metadata": {**o["metadata"],
                                                                                 "resourceVersion": None}})
    slices = REGISTRY.lookup("discovery.k8s.io", "v1", "endpointslices")
    if store.cache.get(slices.key("default", "kubernetes")) is None:
        await _create(store, slices, "default", {
            "metadata": {"name": "kubernetes", "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [advertise_ip], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}]})


async def _create(store, rt, ns, obj) -> None:
    try:
        await store.create(rt, ns, obj)
    except APIError as e:
        if e.code != 409:
            raise
