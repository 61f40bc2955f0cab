"""ipMasq for the bridge plugin: pods reach the outside world with the node's address.

A pod's address (10.244.1.5) means nothing outside the cluster: a reply to it would be routed
nowhere. So traffic from a pod to anything that is *not* another pod is masqueraded — source NAT to
the address of the node interface it leaves by — and conntrack translates the replies back.
Pod-to-pod traffic, also across nodes, must keep the pod's own address (the server must see who
called), hence the exceptions: the pod subnet itself, `nonMasqueradeCIDRs` (the cluster's whole pod
range, in a multi-node cluster), and multicast.

One nftables table per node, `ip nodeagent_masq`; per network N:

    set pods_N      { type ipv4_addr; elements = { 10.244.1.5 comment "<container id>/<ifname>" } }
    set nomasq_N    { type ipv4_addr; flags interval; elements = { 10.244.0.0/16, 224.0.0.0/4 } }
    chain postrouting_N { type nat hook postrouting priority srcnat;
                          ip saddr @pods_N ip daddr != @nomasq_N masquerade }

ADD writes the table, sets and chain idempotently and adds the pod's address to pods_N — one nft
transaction. DEL removes that element (before the IPAM plugin frees the address, so a new pod given
the same address can never lose its element to our late DEL). The element's comment names the
attachment, which is what GC and `nodeagent net show` read.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import json
import re
import threading

from network import nft as N
from network.changes import Change
from network.errors import NftError

TABLE = "nodeagent_masq"
FAMILY = "ip"
MULTICAST = ipaddress.ip_network("224.0.0.0/4")


def _suffix(network: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", network)


def names(network: str) -> tuple[str, str, str]:
    s = _suffix(network)
    return f"pods_{s}", f"nomasq_{s}", f"postrouting_{s}"


def attachment(container_id: str, ifname: str) -> str:
    return f"{container_id}/{ifname}"


# The table's layout for (network, exemptions) that *this process* has written. Rewriting it costs
# deletions (flushing a set or chain), and nf_tables makes every deletion wait for an RCU grace period
# (~15 ms here); so once written, an ADD only adds its element — and if somebody removed the table
# meanwhile, that add fails with ENOENT and we write the layout again.
_layout_written: set[tuple[str, str]] = set()
_layout_lock = threading.Lock()


def forget_layouts() -> None:
    """The tables were removed (node teardown): the next ADD writes the layout again."""
    with _layout_lock:
        _layout_written.clear()


def _layout(network: str, keep: list) -> list[dict]:
    pods, nomasq, chain = names(network)
    return [
        {"add": N.table(FAMILY, TABLE)},
        {"add": N.set_(FAMILY, TABLE, pods, "ipv4_addr")},
        {"add": N.set_(FAMILY, TABLE, nomasq, "ipv4_addr", ["interval"])},
        {"flush": N.set_(FAMILY, TABLE, nomasq, "ipv4_addr")},
        {"add": N.elements(FAMILY, TABLE, nomasq, [N.prefix(n) for n in keep])},
        {"add": N.chain(FAMILY, TABLE, chain, hook="postrouting", prio=100)},
        {"flush": N.chain(FAMILY, TABLE, chain)},
        {"add": N.rule(FAMILY, TABLE, chain, [
            N.match(N.payload("ip", "saddr"), f"@{pods}"),
            N.match(N.payload("ip", "daddr"), f"@{nomasq}", "!="),
            {"masquerade": None}], comment=f"ipMasq for network {network}")},
    ]


class PendingAdd:
    """An ipMasq ADD in flight (see `begin_add`); `finish()` waits for it and returns the Changes."""

    def __init__(self, nft: N.Nft, network: str, v4: list, keep: list, element: dict, key, pending):
        self._nft, self._network, self._v4, self._keep = nft, network, v4, keep
        self._element, self._key, self._pending = element, key, pending

    def finish(self) -> list[Change]:
        if not self._v4:
            return []
        pods, _, _ = names(self._network)
        what = f"set up ipMasq for {', '.join(map(str, self._v4))}"
        written = False
        if self._pending is not None:
            try:
                self._pending.wait()
                written = True
            except NftError as e:
                if e.errno != errno.ENOENT:  # ENOENT: the table is gone; write the layout again
                    raise
        if not written:
            self._nft.run(_layout(self._network, self._keep) + [self._element], what)
            with _layout_lock:
                _layout_written.add(self._key)
        shown = ", ".join(map(str, self._v4))
        return [Change("add", f"{shown} to nftables set {FAMILY} {TABLE} {pods}",
                       f"nft add element {FAMILY} {TABLE} {pods} {{ {shown} }}",
                       f"traffic from the pod to anything but {', '.join(map(str, self._keep))} leaves "
                       "with the node's address (masquerade)")]


def begin_add(nft: N.Nft, network: str, pod_ips: list, exempt: list, container_id: str, ifname: str
              ) -> PendingAdd:
    """Start adding the pod's addresses to the masquerade set; the nft process runs while the caller
    configures the pod. When this process has written the layout before, only the element is added;
    otherwise (or if the table turns out to be gone) finish() writes the whole layout."""
    pods, _, _ = names(network)
    v4 = [ip for ip in pod_ips if ip.version == 4]
    keep = list(ipaddress.collapse_addresses([n for n in exempt if n.version == 4] + [MULTICAST]))
    element = {"add": N.elements(FAMILY, TABLE, pods, [
        {"elem": {"val": str(ip), "comment": attachment(container_id, ifname)}} for ip in v4])}
    key = (network, hashlib.sha256(json.dumps([str(n) for n in keep]).encode()).hexdigest())
    with _layout_lock:
        known = key in _layout_written
    pending = nft.start([element], f"add {', '.join(map(str, v4))} to ipMasq") if v4 and known else None
    return PendingAdd(nft, network, v4, keep, element, key, pending)


def add(nft: N.Nft, network: str, pod_ips: list, exempt: list, container_id: str, ifname: str
        ) -> list[Change]:
    return begin_add(nft, network, pod_ips, exempt, container_id, ifname).finish()


class PendingRemove:
    """An ipMasq DEL in flight (see `begin_remove`)."""

    def __init__(self, nft: N.Nft, network: str, ips: list[str], pending):
        self._nft, self._network, self._ips, self._pending = nft, network, ips, pending

    def finish(self) -> list[Change]:
        if self._pending is None:
            return []
        try:
            self._pending.wait()
        except NftError as e:
            if e.errno != errno.ENOENT:
                raise
            # No table, set, or one of the elements (a second DEL): one by one, so that a missing
            # element does not keep a present one (the whole batch was rolled back).
            return remove(self._nft, self._network, [ipaddress.ip_address(ip) for ip in self._ips])
        pods, _, _ = names(self._network)
        shown = ", ".join(self._ips)
        return [Change("remove", f"{shown} from nftables set {FAMILY} {TABLE} {pods}",
                       f"nft delete element {FAMILY} {TABLE} {pods} {{ {shown} }}")]


def begin_remove(nft: N.Nft, network: str, pod_ips: list) -> PendingRemove:
    """Start removing the pod's addresses from the masquerade set. A deletion makes nf_tables wait
    for an RCU grace period (~15 ms here), so the caller deletes the veth pair meanwhile."""
    pods, _, _ = names(network)
    v4 = [str(ip) for ip in pod_ips if ip.version == 4]
    pending = nft.start([{"delete": N.elements(FAMILY, TABLE, pods, v4)}], f"remove {', '.join(v4)} "
                        "from ipMasq") if v4 else None
    return PendingRemove(nft, network, v4, pending)


def remove(nft: N.Nft, network: str, pod_ips: list) -> list[Change]:
    pods, _, _ = names(network)
    v4 = [str(ip) for ip in pod_ips if ip.version == 4]
    changes = []
    for ip in v4:  # one by one: a missing element must not roll back the removal of another
        try:
            nft.run([{"delete": N.elements(FAMILY, TABLE, pods, [ip])}], f"remove {ip} from ipMasq")
        except NftError as e:
            if e.errno != errno.ENOENT:  # no table, set or element: already gone
                raise
            continue
        changes.append(Change("remove", f"{ip} from nftables set {FAMILY} {TABLE} {pods}",
                              f"nft delete element {FAMILY} {TABLE} {pods} {{ {ip} }}"))
    return changes


def elements(nft: N.Nft, network: str) -> list[tuple[str, str]]:
    """(ip, attachment comment) of every pod address in the network's masquerade set."""
    pods, _, _ = names(network)
    objs = nft.list_table(FAMILY, TABLE) or []
    out = []
    for o in objs:
        s = o.get("set")
        if not s or s.get("name") != pods:
            continue
        for e in s.get("elem", []):
            if isinstance(e, dict) and "elem" in e:
                out.append((str(e["elem"]["val"]), e["elem"].get("comment", "")))
            else:
                out.append((str(e), ""))
    return out


def gc(nft: N.Nft, network: str, valid: set[tuple[str, str]]) -> list[Change]:
    valid_names = {attachment(c, i) for c, i in valid}
    stale = [ipaddress.ip_address(ip) for ip, owner in elements(nft, network) if owner not in valid_names]
    return remove(nft, network, stale)
