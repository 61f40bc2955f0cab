"""Pod networking for the node agent: one call to wire a pod up, one to unwire it.

    net = PodNetwork(PodNetworkConfig(conf_dir="/etc/cni/net.d", bin_dirs=("/opt/cni/bin",)))
    att = net.setup("/run/netns/pod-abc", container_id="abc", port_mappings=[
              {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}])
    att.ip            # IPv4Interface('10.244.1.5/24')
    net.teardown("/run/netns/pod-abc", container_id="abc")

This is the whole interface the agent needs (the kubelet's network plugin interface is the same
shape: SetUpPod / TearDownPod / GetPodNetworkStatus). Contract:
  - setup: the configured network's chain (with the pod's hostPorts as the portMappings
    capability), then loopback up. On failure everything it made is undone (a DEL, as containerd does)
    and a CNIError says which plugin failed and why. Setting up an attachment that is already set up
    is refused (AlreadyAttached) without touching the existing one.
  - teardown: idempotent; succeeds when the netns is already gone, and frees the address then too.
    It uses the config the pod was set up with (kept in the cache), so editing the conf dir never
    strands a running pod's address.
  - both are blocking (netlink, a file lock, an `nft` run): call them from a worker thread
    (asyncio.to_thread), never on the event loop. They are safe to call concurrently for different
    pods.

The fast path: our own plugin types run in this process (cni/invoke.py, InProcessRunner) and enter the
pod's namespace through one long-lived helper process (network/nshelper.py) — no Python start and no
pyroute2 import per pod. Any other plugin type is executed as the spec says.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cni.cache import RuntimeConf
from cni.config import NetworkConfigList, find_network, parse_conflist
from cni.errors import INTERFACE_EXISTS, CNIError
from cni.executor import DEFAULT_CACHE_DIR, CNIExecutor
from cni.invoke import ExecRunner, InProcessRunner
from cni.result import Result
from cni.skel import PluginContext

LOOPBACK_NETWORK = "cni-loopback"



class AlreadyAttached(CNIError):
    pass


@dataclass(frozen=True)
class PodNetworkConfig:
    conf_dir: str = "/etc/cni/net.d"
    bin_dirs: tuple[str, ...] = ("/opt/cni/bin",)
    cache_dir: str = DEFAULT_CACHE_DIR
    network: str | None = None          # None: the first config in conf_dir (see cni/config.py)
    loopback_type: str | None = "nodeagent-loopback"  # None: leave lo alone
    in_process: bool = True             # our plugin types in-process (the fast path)
    nft_binary: str = "nft"


@dataclass(frozen=True)
class PodAttachment:
    network: str
    container_id: str
    ifname: str
    netns: str
    result: Result
    changes: tuple = ()                 # network.changes.Change records (what setup did)

    @property
    def ips(self) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
        return [ip.address for ip in (self.result.sandbox_ips() or self.result.ips)]

    @property
    def ip(self) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
        ips = self.ips
        return next((i for i in ips if i.version == 4), ips[0] if ips else None)


def loopback_network(plugin_type: str) -> NetworkConfigList:
    return parse_conflist({"cniVersion": "1.0.0", "name": LOOPBACK_NETWORK,
                           "plugins": [{"type": plugin_type}]}, "(built in)")


class _SharedSockets:
    """NetnsAccess for one operation: the first plugin to enter a pod's namespace gets a socket from
    the helper; the next ones (bridge, then loopback) get a dup of it instead of another fork. The
    originals are closed when the operation ends. Owned by one operation, used by its thread."""

    def __init__(self, inner):
        self.inner = inner
        self._fds: dict[str, int] = {}
        self._prefetch: dict[str, tuple[threading.Thread, list]] = {}

    def prefetch(self, netns_path: str) -> None:
        """Ask the helper for the pod's socket now, in a thread, so the fork in the helper overlaps
        with the node-side work (bridge, veth, IPAM) that comes before anybody needs the socket."""
        box: list = []

        def fetch():
            try:
                box.append(self.inner.netlink_socket(netns_path))
            except BaseException as e:  # handed to whoever asks for the socket
                box.append(e)

        t = threading.Thread(target=fetch, name="netns-prefetch", daemon=True)
        t.start()
        self._prefetch[netns_path] = (t, box)

    def netlink_socket(self, netns_path: str) -> int:
        if netns_path not in self._fds:
            if netns_path in self._prefetch:
                t, box = self._prefetch.pop(netns_path)
                t.join()
                if isinstance(box[0], BaseException):
                    raise box[0]
                self._fds[netns_path] = box[0]
            else:
                self._fds[netns_path] = self.inner.netlink_socket(netns_path)
        return os.dup(self._fds[netns_path])

    def create(self, path: str) -> None:
        self.inner.create(path)

    def close(self) -> None:
        for t, box in self._prefetch.values():  # fetched but never asked for: still ours to close
            t.join()
            if box and isinstance(box[0], int):
                os.close(box[0])
        self._prefetch = {}
        fds, self._fds = self._fds, {}
        for fd in fds.values():
            os.close(fd)


@dataclass
class _Op:
    """One setup/teardown/...: its list of changes and its shared pod sockets (thread-confined)."""

    changes: list = field(default_factory=list)
    access: _SharedSockets | None = None


class PodNetwork:
    def __init__(self, config: PodNetworkConfig = PodNetworkConfig(), helper=None):
        self.config = config
        self.executor = CNIExecutor(config.bin_dirs, config.cache_dir)
        self._helper = helper          # network.netns.NetnsHelper, shared by all operations
        self._helper_lock = threading.Lock()

    # --- plumbing --------------------------------------------------------------------------------
    def _access(self):
        from network.netns import HelperAccess, NetnsHelper

        with self._helper_lock:
            if self._helper is None:
                self._helper = NetnsHelper()
            return HelperAccess(self._helper)

    @contextlib.contextmanager
    def _operation(self):
        """An operation's runner: in-process for our plugin types, with its own changes list and
        its own shared pod sockets (closed when the operation ends); or plain exec."""
        op = _Op()
        if not self.config.in_process:
            yield op, ExecRunner()
            return
        op.access = access = _SharedSockets(self._access())
        runner = InProcessRunner(lambda r: PluginContext(runner=r, netns_access=lambda: access,
                                                         changes=op.changes,
                                                         nft_binary=self.config.nft_binary))
        try:
            yield op, runner
        finally:
            access.close()

    def network(self) -> NetworkConfigList:
        return find_network(Path(self.config.conf_dir), self.config.network)

    # --- the interface ---------------------------------------------------------------------------
    def setup(self, netns: str, container_id: str, ifname: str = "eth0", port_mappings=(),
              cni_args: tuple[tuple[str, str], ...] = ()) -> PodAttachment:
        net = self.network()
        caps = {"portMappings": [dict(m) for m in port_mappings]} if port_mappings else {}
        rt = RuntimeConf(container_id, netns, ifname, tuple(cni_args), caps)
        if self.executor.cache.read(net.name, rt) is not None:
            raise AlreadyAttached(INTERFACE_EXISTS, f"container {container_id} ({ifname}) is already attached to "
                                       f"network {net.name!r}", "tear it down first")
        lo_rt = RuntimeConf(container_id, netns, "lo")
        with self._operation() as (op, runner):
            if op.access is not None:
                op.access.prefetch(netns)
            try:
                # the pod's own network first, then lo: the helper's fork for the pod's socket then
                # overlaps the node-side work of the first plugin (the order of the two is ours to pick)
                result = self.executor.add(net, rt, runner)
                if self.config.loopback_type:
                    self.executor.add(loopback_network(self.config.loopback_type), lo_rt, runner)
            except BaseException:
                self._undo(net, rt, lo_rt, runner)
                raise
            return PodAttachment(net.name, container_id, ifname, netns, result, tuple(op.changes))

    def _undo(self, net, rt, lo_rt, runner) -> None:
        pairs = [(net, rt)]
        if self.config.loopback_type:
            pairs.append((loopback_network(self.config.loopback_type), lo_rt))
        for n, r in pairs:
            try:
                self.executor.delete(n, r, runner)
            except CNIError:
                pass  # best effort: the original error is the one to report

    def teardown(self, netns: str, container_id: str, ifname: str = "eth0") -> list:
        net, rt = self._attachment(netns, container_id, ifname)
        with self._operation() as (op, runner):
            self.executor.delete(net, rt, runner)
            if self.config.loopback_type:
                self.executor.delete(loopback_network(self.config.loopback_type),
                                     RuntimeConf(container_id, netns, "lo"), runner)
            return op.changes

    def _attachment(self, netns: str, container_id: str, ifname: str) -> tuple[NetworkConfigList, RuntimeConf]:
        """The config and runtime parameters an attachment was set up with (from the cache) — so a
        changed conf dir never strands a pod — or, if nothing is cached, the conf dir's network."""
        rt = RuntimeConf(container_id, netns, ifname)
        current = None
        try:
            current = self.network()
        except CNIError:
            pass
        entry = self.executor.cache.read(current.name, rt) if current else None
        if entry is None:  # the conf dir changed (or is gone): look for it under any network name
            entry = next((e for e in self.executor.cached_attachments()
                          if e.container_id == container_id and e.ifname == ifname), None)
        if entry is not None:
            cached_rt = RuntimeConf(container_id, netns or entry.netns, ifname, entry.cni_args,
                                    entry.capability_args)
            if entry.config:
                try:
                    return parse_conflist(entry.config, f"cached config of {entry.path.name}"), cached_rt
                except CNIError:
                    pass
            if current is not None:
                return current, cached_rt
        if current is None:
            return self.network(), rt  # raises the conf dir's error
        return current, rt

    def check(self, netns: str, container_id: str, ifname: str = "eth0") -> None:
        net, rt = self._attachment(netns, container_id, ifname)
        with self._operation() as (_, runner):
            self.executor.check(net, rt, runner)

    def status(self) -> None:
        with self._operation() as (_, runner):
            self.executor.status(self.network(), runner)

    def gc(self, valid: list[tuple[str, str]]) -> None:
        """Remove every attachment (and plugin resource) not in `valid` [(container id, ifname)]."""
        with self._operation() as (_, runner):
            self.executor.gc(self.network(), valid, runner)
            if self.config.loopback_type:
                self.executor.gc(loopback_network(self.config.loopback_type),
                                 [(c, "lo") for c, _ in valid], runner)

    def close(self) -> None:
        """Stop the netns helper (the next operation starts a new one)."""
        with self._helper_lock:
            if self._helper is not None:
                self._helper.close()
                self._helper = None


def teardown_node(bridge: str = "cni0", nft_binary: str = "nft") -> list:
    """Remove the node-wide pod network: our nftables tables, the bridge, the routes to other nodes
    and the VXLAN device. For taking a node out of the cluster; pods should be torn down first (a
    pod still attached loses its network). Returns the Changes."""
    from cni.plugins import ipmasq, portmap
    from network import nft as N
    from network.changes import Change
    from network.crossnode import teardown as crossnode_teardown
    from network.links import delete_link
    from network.rtnl import node_session

    nft = N.Nft(nft_binary)
    changes = []
    for family, table in ((ipmasq.FAMILY, ipmasq.TABLE), (portmap.FAMILY, portmap.TABLE)):
        if nft.list_table(family, table) is not None:
            nft.run([{"delete": N.table(family, table)}], f"delete table {family} {table}")
            changes.append(Change("delete", f"nftables table {family} {table}", f"nft delete table {family} {table}"))
    ipmasq.forget_layouts()
    portmap.forget_layout()
    with node_session() as ipr:
        changes += delete_link(ipr, bridge)
        changes += crossnode_teardown(ipr)
    return changes
