"""ClusterIP and NodePort allocation for Services (the kube-apiserver's service IP allocator).

A Service gets a virtual IP from the service range (`--service-cluster-ip-range`, default
10.96.0.0/12; its first address belongs to the `kubernetes` service) unless it asks for one
(`spec.clusterIP`, which must be free and in range) or is headless (`clusterIP: None`). NodePort
and LoadBalancer services also get a port from 30000-32767 on every node. The used set is read
from the watch cache plus `reserved`: addresses handed to creates that are still on their way to
the store. Without it two concurrent creates could both pick the next free address before either
reached the cache; the caller releases its reservation once the write has landed (or failed).
"""

from __future__ import annotations

import ipaddress

from controlplane.apiserver.errors import FieldError, invalid
from controlplane.storage.watchcache import WatchCache


def allocate(obj: dict, cache: WatchCache, service_net, node_ports: tuple[int, int],
             reserved: set, taken: set) -> list[FieldError]:
    """Fill spec.clusterIP(s) and nodePorts, avoiding `reserved`; add what it took to `taken`."""
    spec = obj["spec"]
    if spec.get("type") == "ExternalName":
        return []
    used_ips, used_ports = set(reserved), set(reserved)
    for e in cache.list("/registry/services/")[0]:
        s = e.obj.get("spec") or {}
        used_ips.update(s.get("clusterIPs") or [s.get("clusterIP")])
        used_ports.update(p.get("nodePort") for p in s.get("ports") or [])
    ip = spec.get("clusterIP")
    if ip == "None":
        spec["clusterIPs"] = ["None"]
    elif ip:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return [invalid("spec.clusterIP", ip, "must be a valid IP address")]
        if addr not in service_net:
            return [invalid("spec.clusterIP", ip, f"provided IP is not in the valid range. "
                            f"The range of valid IPs is {service_net}")]
        if ip in used_ips:
            return [invalid("spec.clusterIP", ip, "provided IP is already allocated")]
        spec["clusterIPs"] = [ip]
    else:
        hosts = service_net.hosts()
        next(hosts)  # .1 belongs to the `kubernetes` service
        for addr in hosts:
            if str(addr) not in used_ips:
                spec["clusterIP"] = str(addr)
                spec["clusterIPs"] = [str(addr)]
                break
        else:
            return [invalid("spec.clusterIP", "", f"range {service_net} is full")]
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    if spec.get("type") in ("NodePort", "LoadBalancer"):
        free = (p for p in range(node_ports[0], node_ports[1] + 1) if p not in used_ports)
        for i, p in enumerate(spec.get("ports") or []):
            if not p.get("nodePort"):
                p["nodePort"] = next(free, None)
                if p["nodePort"] is None:
                    return [invalid(f"spec.ports[{i}].nodePort", 0, "node port range is full")]
    taken.update(ip for ip in spec.get("clusterIPs") or [] if ip != "None")
    taken.update(p.get("nodePort") for p in spec.get("ports") or [] if p.get("nodePort"))
    return []


def keep_allocated(old: dict, new: dict) -> None:
    """An update that leaves out the allocated values keeps them (upstream PatchAllocatedValues):
    a PUT of a manifest without clusterIP must not look like a request to change it."""
    o, n = old.get("spec") or {}, new.get("spec")
    if not isinstance(n, dict):
        return
    for f in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        if not n.get(f) and o.get(f):
            n[f] = o[f]
    old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in o.get("ports") or []}
    if n.get("type") in ("NodePort", "LoadBalancer"):
        for p in n.get("ports") or []:
            if not p.get("nodePort") and old_ports.get((p.get("port"), p.get("protocol", "TCP"))):
                p["nodePort"] = old_ports[(p.get("port"), p.get("protocol", "TCP"))]
