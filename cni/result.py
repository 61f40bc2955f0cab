"""The ADD result (SPEC.md section 5), as frozen dataclasses, and its JSON in each spec version.

A result says what an attachment made: the interfaces (the bridge, the node end of the veth, the
pod's eth0 with its `sandbox` = netns path), the IPs (each pointing at an interface by index into
`interfaces`), routes and DNS. The last plugin's result is what the runtime stores and hands back
as `prevResult` on CHECK and DEL.

Shape by version (what `to_json` writes, `from_json` accepts):
  0.3.x/0.4.0  each IP has "version": "4" | "6"
  1.0.0        no "version" in IPs
  1.1.0        interfaces may carry mtu/socketPath/pciID; routes mtu/advmss/priority/table/scope
An IPAM plugin returns the same object without `interfaces` and without `interface` in the IPs.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace

from cni import version as cniversion
from cni.errors import DECODING_FAILURE, CNIError

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _bad(path: str, why: str) -> CNIError:
    return CNIError(DECODING_FAILURE, f"invalid result field {path}", why)


@dataclass(frozen=True)
class Interface:
    name: str
    mac: str = ""
    sandbox: str = ""     # the netns path for an interface inside the container; "" on the node
    mtu: int = 0          # 1.1.0
    socket_path: str = ""  # 1.1.0
    pci_id: str = ""      # 1.1.0


@dataclass(frozen=True)
class IPConfig:
    address: IPInterface          # address with prefix: "10.244.1.5/24"
    gateway: IPAddress | None = None
    interface: int | None = None  # index into Result.interfaces


@dataclass(frozen=True)
class Route:
    dst: IPNetwork
    gw: IPAddress | None = None
    mtu: int = 0        # 1.1.0
    advmss: int = 0     # 1.1.0
    priority: int = 0   # 1.1.0
    table: int | None = None  # 1.1.0
    scope: int | None = None  # 1.1.0


@dataclass(frozen=True)
class DNS:
    nameservers: tuple[str, ...] = ()
    domain: str = ""
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def to_json(self) -> dict:
        out: dict = {}
        if self.nameservers:
            out["nameservers"] = list(self.nameservers)
        if self.domain:
            out["domain"] = self.domain
        if self.search:
            out["search"] = list(self.search)
        if self.options:
            out["options"] = list(self.options)
        return out

    @classmethod
    def from_json(cls, obj) -> "DNS":
        if obj is None:
            return cls()
        if not isinstance(obj, dict):
            raise _bad("dns", "must be an object")
        return cls(tuple(obj.get("nameservers") or ()), obj.get("domain") or "",
                   tuple(obj.get("search") or ()), tuple(obj.get("options") or ()))


@dataclass(frozen=True)
class Result:
    cni_version: str
    interfaces: tuple[Interface, ...] = ()
    ips: tuple[IPConfig, ...] = ()
    routes: tuple[Route, ...] = ()
    dns: DNS = field(default_factory=DNS)

    def with_version(self, v: str) -> "Result":
        return replace(self, cni_version=v)

    def sandbox_ips(self) -> list[IPConfig]:
        """The IPs given to interfaces inside the container (those with a sandbox)."""
        out = []
        for ip in self.ips:
            if ip.interface is not None and 0 <= ip.interface < len(self.interfaces) \
                    and self.interfaces[ip.interface].sandbox:
                out.append(ip)
        return out

    # --- JSON ------------------------------------------------------------------------------------
    def to_json(self, v: str | None = None) -> dict:
        v = v or self.cni_version
        pre1 = not cniversion.at_least(v, "1.0.0")
        v11 = cniversion.at_least(v, "1.1.0")
        out: dict = {"cniVersion": v}
        if self.interfaces:
            ifs = []
            for i in self.interfaces:
                o: dict = {"name": i.name}
                if i.mac:
                    o["mac"] = i.mac
                if v11 and i.mtu:
                    o["mtu"] = i.mtu
                if i.sandbox:
                    o["sandbox"] = i.sandbox
                if v11 and i.socket_path:
                    o["socketPath"] = i.socket_path
                if v11 and i.pci_id:
                    o["pciID"] = i.pci_id
                ifs.append(o)
            out["interfaces"] = ifs
        if self.ips:
            ips = []
            for ip in self.ips:
                o = {}
                if pre1:
                    o["version"] = str(ip.address.version)
                if ip.interface is not None:
                    o["interface"] = ip.interface
                o["address"] = str(ip.address)
                if ip.gateway is not None:
                    o["gateway"] = str(ip.gateway)
                ips.append(o)
            out["ips"] = ips
        if self.routes:
            rs = []
            for r in self.routes:
                o = {"dst": str(r.dst)}
                if r.gw is not None:
                    o["gw"] = str(r.gw)
                if v11:
                    for key, val in (("mtu", r.mtu), ("advmss", r.advmss), ("priority", r.priority)):
                        if val:
                            o[key] = val
                    if r.table is not None:
                        o["table"] = r.table
                    if r.scope is not None:
                        o["scope"] = r.scope
                rs.append(o)
            out["routes"] = rs
        dns = self.dns.to_json()
        if dns or not pre1:
            out["dns"] = dns
        return out

    @classmethod
    def from_json(cls, obj, default_version: str) -> "Result":
        """Parse a result (or prevResult) object; its own cniVersion wins over `default_version`."""
        if not isinstance(obj, dict):
            raise _bad("(result)", "must be a JSON object")
        v = obj.get("cniVersion") or default_version
        if v not in cniversion.RUNTIME_VERSIONS:
            raise CNIError(1, "incompatible CNI versions", f"result version {v!r} is not supported")
        interfaces = []
        for n, i in enumerate(obj.get("interfaces") or ()):
            if not isinstance(i, dict) or not isinstance(i.get("name"), str) or not i["name"]:
                raise _bad(f"interfaces[{n}].name", "must be a non-empty string")
            interfaces.append(Interface(i["name"], i.get("mac") or "", i.get("sandbox") or "",
                                        int(i.get("mtu") or 0), i.get("socketPath") or "",
                                        i.get("pciID") or ""))
        ips = []
        for n, ip in enumerate(obj.get("ips") or ()):
            try:
                addr = ipaddress.ip_interface(ip["address"])
            except (KeyError, TypeError, ValueError):
                raise _bad(f"ips[{n}].address", "must be an address in CIDR notation") from None
            try:
                gw = ipaddress.ip_address(ip["gateway"]) if ip.get("gateway") else None
            except ValueError:
                raise _bad(f"ips[{n}].gateway", f"{ip.get('gateway')!r} is not an IP address") from None
            iface = ip.get("interface")
            if iface is not None and (not isinstance(iface, int) or iface < 0):
                raise _bad(f"ips[{n}].interface", "must be a non-negative index")
            ips.append(IPConfig(addr, gw, iface))
        routes = []
        for n, r in enumerate(obj.get("routes") or ()):
            try:
                dst = ipaddress.ip_network(r["dst"], strict=False)
            except (KeyError, TypeError, ValueError):
                raise _bad(f"routes[{n}].dst", "must be a network in CIDR notation") from None
            try:
                gw = ipaddress.ip_address(r["gw"]) if r.get("gw") else None
            except ValueError:
                raise _bad(f"routes[{n}].gw", f"{r.get('gw')!r} is not an IP address") from None
            routes.append(Route(dst, gw, int(r.get("mtu") or 0), int(r.get("advmss") or 0),
                                int(r.get("priority") or 0), r.get("table"), r.get("scope")))
        return cls(v, tuple(interfaces), tuple(ips), tuple(routes), DNS.from_json(obj.get("dns")))
