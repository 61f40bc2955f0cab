"""ClusterIP and NodePort allocation for Services (the kube-apiserver's service IP and port allocators).

A Service gets a virtual IP from the service range (`--service-cluster-ip-range`, default
10.96.0.0/12; its first address belongs to the `kubernetes` service) unless it asks for one
(`spec.clusterIP`, which must be free and in range) or is headless (`clusterIP: None`). NodePort
and LoadBalancer services also get a port from 30000-32767 on every node.

Dynamic values are picked at random, not in order, so that an address or port freed by a
deleted Service is not handed to the next one at once (a client still holding the old value would
reach the wrong Service). Each range is split in two (KEP-3070 for IPs, KEP-3668 for ports): a
small lower band that dynamic allocation uses only when the upper band is full, so that users who
choose static values (`clusterIP: 10.96.0.10` for DNS, a fixed nodePort) pick from the lower band
without racing the allocator. The lower band is min(max(16, size/16), 256) addresses and
min(max(16, size/32), 128) ports, as upstream computes it.

The used set is read from the watch cache plus `reserved`: values handed to writes that are
still on their way to the store. Without it two concurrent creates could both pick the same free
value before either reached the cache; the caller releases its reservation once the write has
landed (or failed). Errors name the field, worded as upstream's allocators word them.
"""

from __future__ import annotations

import ipaddress
import random

from controlplane.apiserver.errors import FieldError, invalid
from controlplane.storage.watchcache import WatchCache

_rng = random.SystemRandom()


def _band(size: int, lo: int, hi: int, step: int) -> int:
    """Size of the static (lower) band: min(max(lo, size/step), hi); none for tiny ranges."""
    if size <= lo:
        return 0
    return min(max(lo, size // step), hi)


def _pick(size: int, static_band: int, taken) -> int | None:
    """An offset in [0, size) not in `taken`: a random start in the upper band, scanning
    upwards with wrap-around, then the same in the lower band (upstream's
    randomScanStrategyWithOffset)."""
    upper = size - static_band
    if upper > 0:
        start = _rng.randrange(upper)
        for i in range(upper):
            at = static_band + (start + i) % upper
            if not taken(at):
                return at
    if static_band:
        start = _rng.randrange(static_band)
        for i in range(static_band):
            at = (start + i) % static_band
            if not taken(at):
                return at
    return None


def _used(cache: WatchCache, reserved: set, skip_key: str | None) -> tuple[set, set]:
    ips, ports = set(reserved), set(reserved)
    for e in cache.list("/registry/services/")[0]:
        if e.key == skip_key:
            continue
        s = e.obj.get("spec") or {}
        ips.update(s.get("clusterIPs") or [s.get("clusterIP")])
        ports.update(p.get("nodePort") for p in s.get("ports") or [])
    return ips, ports


def _next_ip(service_net, used: set) -> str | None:
    first = int(service_net.network_address) + 1
    size = service_net.num_addresses - 2  # no network or broadcast address
    band = _band(service_net.num_addresses, 16, 256, 16)
    off = _pick(size, band, lambda i: str(ipaddress.ip_address(first + i)) in used)
    return None if off is None else str(ipaddress.ip_address(first + off))


def _next_port(node_ports: tuple[int, int], used: set) -> int | None:
    size = node_ports[1] - node_ports[0] + 1
    off = _pick(size, _band(size, 16, 128, 32), lambda i: node_ports[0] + i in used)
    return None if off is None else node_ports[0] + off


def allocate(obj: dict, cache: WatchCache, service_net, node_ports: tuple[int, int],
             reserved: set, taken: set, old: dict | None = None,
             key: str | None = None) -> list[FieldError]:
    """Fill spec.clusterIP(s) and nodePorts of a created (old None) or updated Service, check
    requested values, and add what it took to `taken`. `key` is the Service's own storage key,
    whose current values an update may keep."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return []
    ospec = (old or {}).get("spec") or {}
    if spec.get("type") == "ExternalName":
        return []
    used_ips, used_ports = _used(cache, reserved, key)
    errs: list[FieldError] = []
    ip = spec.get("clusterIP") or ((spec.get("clusterIPs") or [None])[0])
    if ip == "None":
        spec["clusterIP"], spec["clusterIPs"] = "None", ["None"]
    elif ip and ip == ospec.get("clusterIP"):
        spec["clusterIPs"] = spec.get("clusterIPs") or [ip]  # kept from before: nothing to check
    elif ip:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return [invalid("spec.clusterIPs", [ip], f"failed to allocate IP {ip}: must be a "
                            f"valid IP address")]
        first, last = service_net.network_address + 1, service_net.broadcast_address - 1
        if not first <= addr <= last:
            return [invalid("spec.clusterIPs", [ip], f"failed to allocate IP {ip}: the provided "
                            f"IP ({ip}) is not in the valid range. The range of valid IPs is "
                            f"{service_net}")]
        if ip in used_ips:
            return [invalid("spec.clusterIPs", [ip], f"failed to allocate IP {ip}: provided IP is "
                            f"already allocated")]
        spec["clusterIP"], spec["clusterIPs"] = ip, [ip]
    else:
        new_ip = _next_ip(service_net, used_ips)
        if new_ip is None:
            return [invalid("spec.clusterIPs", [], f"failed to allocate a serviceIP: range "
                            f"{service_net} is full")]
        spec["clusterIP"], spec["clusterIPs"] = new_ip, [new_ip]
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    kept = {p.get("nodePort") for p in ospec.get("ports") or []} \
        if ospec.get("type") in ("NodePort", "LoadBalancer") else set()
    if spec.get("type") in ("NodePort", "LoadBalancer"):
        by_port: dict = {}  # one nodePort per service port number, as upstream (TCP+UDP pairs)
        for i, p in enumerate(spec.get("ports") or []):
            want = p.get("nodePort")
            if not want:
                want = by_port.get(p.get("port")) or _next_port(node_ports, used_ports)
                if want is None:
                    return [invalid(f"spec.ports[{i}].nodePort", 0, "failed to allocate a "
                                    "nodePort: range is full")]
                p["nodePort"] = want
            elif want not in kept and want != by_port.get(p.get("port")):
                if not node_ports[0] <= want <= node_ports[1]:
                    errs.append(invalid(f"spec.ports[{i}].nodePort", want, f"provided port is "
                                        f"not in the valid range. The range of valid ports is "
                                        f"{node_ports[0]}-{node_ports[1]}"))
                    continue
                if want in used_ports:
                    errs.append(invalid(f"spec.ports[{i}].nodePort", want,
                                        "provided port is already allocated"))
                    continue
            used_ports.add(want)
            by_port.setdefault(p.get("port"), want)
    if errs:
        return errs
    taken.update(ip for ip in spec.get("clusterIPs") or [] if ip != "None")
    taken.update(p.get("nodePort") for p in spec.get("ports") or [] if p.get("nodePort"))
    return []


def keep_allocated(old: dict, new: dict) -> None:
    """An update that leaves out the allocated values keeps them (upstream PatchAllocatedValues):
    a PUT of a manifest without clusterIP must not look like a request to change it."""
    o, n = old.get("spec") or {}, new.get("spec")
    if not isinstance(n, dict):
        return
    if o.get("type") == "ExternalName" or n.get("type") == "ExternalName":
        return
    for f in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        if not n.get(f) and o.get(f):
            n[f] = o[f]
    old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in o.get("ports") or []}
    if n.get("type") in ("NodePort", "LoadBalancer"):
        for p in n.get("ports") or []:
            if not p.get("nodePort") and old_ports.get((p.get("port"), p.get("protocol", "TCP"))):
                p["nodePort"] = old_ports[(p.get("port"), p.get("protocol", "TCP"))]
