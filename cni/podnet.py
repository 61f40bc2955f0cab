"""Pod networking for the node agent: one call to wire a pod up, one to unwire it.

    net = PodNetwork(PodNetworkConfig(conf_dir="/etc/cni/net.d", bin_dirs=("/opt/cni/bin",)))
    att = net.setup("/run/netns/pod-abc", container_id="abc", port_mappings=[
              {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}])
    att.ip            # IPv4Interface('10.244.1.5/24')
    net.teardown("/run/netns/pod-abc", container_id="abc")

This is the whole interface the agent needs (the kubelet's network plugin interface is the same
shape: SetUpPod / TearDownPod / GetPodNetworkStatus). Contract:
  - setup: loopback up, then the configured network's chain (with the pod's hostPorts as the
    portMappings capability). On failure everything it made is undone (a DEL, as containerd does)
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

import ipaddress
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cni.cache import RuntimeConf
from cni.config import NetworkConfigList, find_network, parse_conflist
from cni.errors import CNIError
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


@dataclass
class _Op:
    """One setup/teardown: its own runner and its own list of changes (thread-confined)."""

    changes: list = field(default_factory=list)


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

    def _runner(self, op: _Op):
        if not self.config.in_process:
            return ExecRunner()
        access = self._access()
        return InProcessRunner(lambda runner: PluginContext(runner=runner, netns_access=lambda: access,
                                                            changes=op.changes,
                                                            nft_binary=self.config.nft_binary))

    def network(self) -> NetworkConfigList:
        return find_network(Path(self.config.conf_dir), self.config.network)

    # --- the interface ---------------------------------------------------------------------------
    def setup(self, netns: str, container_id: str, ifname: str = "eth0", port_mappings=(),
              cni_args: tuple[tuple[str, str], ...] = ()) -> PodAttachment:
        net = self.network()
        caps = {"portMappings": [dict(m) for m in port_mappings]} if port_mappings else {}
        rt = RuntimeConf(container_id, netns, ifname, tuple(cni_args), caps)
        if self.executor.cache.read(net.name, rt) is not None:
            raise AlreadyAttached(101, f"container {container_id} ({ifname}) is already attached to "
                                       f"network {net.name!r}", "tear it down first")
        op = _Op()
        runner = self._runner(op)
        lo_rt = RuntimeConf(container_id, netns, "lo")
        try:
            if self.config.loopback_type:
                self.executor.add(loopback_network(self.config.loopback_type), lo_rt, runner)
            result = self.executor.add(net, rt, runner)
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
        op = _Op()
        runner = self._runner(op)
        rt = RuntimeConf(container_id, netns, ifname)
        net = self._config_for(rt)
        cached = self.executor.cache.read(net.name, rt)
        if cached is not None:
            rt = RuntimeConf(container_id, netns or cached.netns, ifname, cached.cni_args,
                             cached.capability_args)
        self.executor.delete(net, rt, runner)
        if self.config.loopback_type:
            self.executor.delete(loopback_network(self.config.loopback_type),
                                 RuntimeConf(container_id, netns, "lo"), runner)
        return op.changes

    def _config_for(self, rt: RuntimeConf) -> NetworkConfigList:
        """The config the attachment was made with, if cached; else the conf dir's current one."""
        current = None
        try:
            current = self.network()
        except CNIError:
            pass
        for entry in self.executor.cached_attachments(current.name if current else None):
            if entry.container_id == rt.container_id and entry.ifname == rt.ifname and entry.config:
                try:
                    return parse_conflist(entry.config, f"cached config of {entry.path.name}")
                except CNIError:
                    break
        if current is None:
            return self.network()  # raises the conf dir's error
        return current

    def check(self, netns: str, container_id: str, ifname: str = "eth0") -> None:
        op = _Op()
        rt = RuntimeConf(container_id, netns, ifname)
        net = self._config_for(rt)
        cached = self.executor.cache.read(net.name, rt)
        if cached is not None:
            rt = cached.runtime_conf()
        self.executor.check(net, rt, self._runner(op))

    def status(self) -> None:
        self.executor.status(self.network(), self._runner(_Op()))

    def gc(self, valid: list[tuple[str, str]]) -> None:
        """Remove every attachment (and plugin resource) not in `valid` [(container id, ifname)]."""
        runner = self._runner(_Op())
        self.executor.gc(self.network(), valid, runner)
        if self.config.loopback_type:
            self.executor.gc(loopback_network(self.config.loopback_type),
                             [(c, "lo") for c, _ in valid], runner)

    def close(self) -> None:
        with self._helper_lock:
            if self._helper is not None:
                self._helper.close()
                self._helper = None


# --- module-level convenience for the agent ---------------------------------------------------------
_default: PodNetwork | None = None
_default_lock = threading.Lock()


def _shared(config: PodNetworkConfig | None) -> PodNetwork:
    global _default
    with _default_lock:
        if _default is None or (config is not None and config != _default.config):
            _default = PodNetwork(config or PodNetworkConfig())
        return _default


def setup_pod_network(netns_path: str, container_id: str, ifname: str = "eth0", port_mappings=(),
                      config: PodNetworkConfig | None = None) -> PodAttachment:
    return _shared(config).setup(netns_path, container_id, ifname, port_mappings)


def teardown_pod_network(netns_path: str, container_id: str, ifname: str = "eth0",
                         config: PodNetworkConfig | None = None) -> list:
    return _shared(config).teardown(netns_path, container_id, ifname)
