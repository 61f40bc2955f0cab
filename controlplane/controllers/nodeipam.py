"""Node IPAM: give every node its own pod subnet (`spec.podCIDR`), as the range allocator does.

The cluster CIDR (--cluster-cidr, default 10.244.0.0/16) is cut into subnets of
--node-cidr-mask-size bits (/24: 256 of them, 254 pods each). A node without a podCIDR gets the
next free one — a roving pointer, so a subnet freed by a deleted node is not handed out again at
once (stale routes to it may linger on other nodes for a while) — and `spec.podCIDR` /
`spec.podCIDRs` are set with one patch. The CNI plugin on the node (host-local IPAM) then assigns
pod addresses from it.

The set of used subnets lives only in memory: at the start of each term of leadership it is
rebuilt from the nodes' podCIDRs, so two leaders one after the other never hand out the same one.
A node's podCIDR never changes once set (the API server refuses it); a deleted node's is released.

When the range is used up, a node without a subnet gets one CIDRNotAvailable event and a log
line, then *waits*: it is tried again when a subnet is released (a node deleted), not on each of
its updates — with every kubelet posting status, retrying on updates (and recording an event
each time) would be a storm of failed syncs and events that helps nobody.
"""

from __future__ import annotations

import ipaddress

from apiclient import NODES, Conflict, NotFound

from controlplane.controllers.base import Context, Controller


class CIDRSet:
    """The subnets of a cluster CIDR and which are used (upstream's cidrset)."""

    def __init__(self, cluster_cidr: str, mask: int):
        self.net = ipaddress.ip_network(cluster_cidr, strict=False)
        if mask < self.net.prefixlen or mask > self.net.max_prefixlen:
            raise ValueError(f"--node-cidr-mask-size {mask} does not fit the cluster CIDR {cluster_cidr}")
        self.mask = mask
        self.size = 2 ** (mask - self.net.prefixlen)
        self.used: set[int] = set()
        self.next = 0

    def _subnet(self, i: int):
        step = 2 ** (self.net.max_prefixlen - self.mask)
        return ipaddress.ip_network((int(self.net.network_address) + i * step, self.mask))

    def _index(self, cidr: str) -> int | None:
        try:
            sub = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return None
        if sub.version != self.net.version or sub.prefixlen != self.mask or not sub.subnet_of(self.net):
            return None
        return (int(sub.network_address) - int(self.net.network_address)) >> (self.net.max_prefixlen - self.mask)

    def occupy(self, cidr: str) -> bool:
        i = self._index(cidr)
        if i is None:
            return False
        self.used.add(i)
        return True

    def release(self, cidr: str) -> None:
        i = self._index(cidr)
        if i is not None:
            self.used.discard(i)

    def allocate(self) -> str | None:
        for k in range(self.size):
            i = (self.next + k) % self.size
            if i not in self.used:
                self.used.add(i)
                self.next = (i + 1) % self.size
                return str(self._subnet(i))
        return None


class NodeIpamController(Controller):
    name = "nodeipam"

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.cidrs = CIDRSet(self.options.cluster_cidr, self.options.node_cidr_mask_size)
        self.nodes = ctx.informers.get(NODES)
        self.nodes.add_handler(self._event)
        self.owner: dict[str, str] = {}  # node → the podCIDR we hold for it
        self.waiting: set[str] = set()  # nodes told CIDRNotAvailable, waiting for a release

    def _event(self, type_: str, node: dict, old: dict | None) -> None:
        name = node["metadata"]["name"]
        if type_ == "DELETED":
            cidr = (node.get("spec") or {}).get("podCIDR") or self.owner.get(name)
            if cidr and self.owner.get(name) == cidr:
                self.cidrs.release(cidr)
                self.owner.pop(name, None)
                self.log.info("released %s of deleted node %s", cidr, name)
                for waiter in self.waiting:
                    self.queue.add(waiter)
            self.waiting.discard(name)
            return
        if name in self.waiting and not (node.get("spec") or {}).get("podCIDR"):
            return  # nothing has been released since it was told: an update changes nothing
        self.queue.add(name)

    async def start(self) -> None:
        for node in self.nodes.list():
            cidr = (node.get("spec") or {}).get("podCIDR")
            if cidr and self.cidrs.occupy(cidr):
                self.owner[node["metadata"]["name"]] = cidr

    async def sync(self, key: str) -> None:
        if not self.options.allocate_node_cidrs:
            return
        node = self.nodes.get("", key)
        if node is None:
            return
        have = (node.get("spec") or {}).get("podCIDR")
        if have:
            self.waiting.discard(key)
            if self.owner.get(key) != have and self.cidrs.occupy(have):
                self.owner[key] = have
            return
        if key in self.owner:
            return  # allocated; the informer has not shown our patch yet
        cidr = self.cidrs.allocate()
        if cidr is None:
            if key not in self.waiting:
                self.waiting.add(key)
                self.events.emit(node, "Normal",
                                 "CIDRNotAvailable", f"Node {key} status is now: CIDRNotAvailable")
                self.log.warning("node %s: no free /%d left in %s; it waits for a node to be deleted",
                                 key, self.cidrs.mask, self.cidrs.net)
            return
        self.waiting.discard(key)
        self.owner[key] = cidr
        for attempt in range(5):
            try:
                await self.api.patch(NODES, key, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
                break
            except Conflict:  # a concurrent status write; the patch itself cannot conflict
                if attempt < 4:
                    continue
                self.owner.pop(key, None)
                self.cidrs.release(cidr)
                raise
            except NotFound:
                self.owner.pop(key, None)
                self.cidrs.release(cidr)
                return
        self.log.info("node %s: podCIDR %s", key, cidr)
