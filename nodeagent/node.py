"""The node agent, assembled: what `nodeagent up` and `nodeagent agent` run (the kubelet's
kubelet.go Run, in one page).

    run_node_agent(config, api)
      1. who am I     node name, node IP, this node's pod range (--pod-cidr, the Node's
                      spec.podCIDR from node IPAM, or a /24 of the cluster range)
      2. the network  the CNI config for that range (<data-dir>/cni/net.d)
      3. the runtime  nodeagent.cri (sandboxes, containers, images) and the pods' cgroup tree (cm.py)
      4. the Node     registration, then status every 10 s and the Lease (nodestatus.py)
      5. the pods     an Informer on pods with spec.nodeName=<me> feeds the pod workers
                      (podworkers.py); each syncs through kuberuntime/ and reports to the status
                      manager (status.py); events go through the recorder (events.py)
      6. PLEG         container events from the runtime (and a relist every 5 s) wake the worker
                      of the pod whose container changed — that is how an exit becomes a restart
                      and a status; image GC (imagegc.py) every 5 min
      7. clean-up     once the informer has synced: pods the runtime has that the API no longer
                      does (deleted while we were down) are killed and removed

Stopping the agent (SIGTERM) cancels its tasks and leaves every pod running: the next start
adopts them from the runtime, with the same container IDs and restart counts. `clean_node` is
what `nodeagent down` adds on top: every pod, cgroup and network object removed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from apiclient import (CONFIGMAPS, NODES, PODS, SECRETS, SERVICEACCOUNTS, SERVICES, ApiClient,
                       ApiError, Informer, NotFound)
from nodeagent.errors import AgentError

log = logging.getLogger("nodeagent.node")

PLEG_RELIST = 5.0
RESOURCES = {"configmaps": CONFIGMAPS, "secrets": SECRETS}


@dataclass(frozen=True)
class AgentConfig:
    data_dir: str
    node_name: str | None = None
    node_ip: str | None = None
    pod_cidr: str | None = None
    cluster_cidr: str = "10.244.0.0/16"
    cluster_dns: tuple[str, ...] = ()
    wait_for_pod_cidr: float = 0.0          # `agent`: how long to wait for node IPAM
    kubelet_port: int | None = 10250        # the kubelet API (nodeagent/server); None: not served
    cluster_ca: str | None = None           # the CA whose clients (the API server) it accepts
    cluster_ca_key: str | None = None       # all-in-one: sign our serving certificate with it
    image_gc: object = None                 # imagegc.ImageGCPolicy; None: the kubelet's defaults
    eviction: object = None                 # eviction.EvictionConfig; None: the kubelet's defaults

    @property
    def agent_dir(self) -> Path:
        return Path(self.data_dir) / "agent"

    @property
    def cni_dir(self) -> Path:
        return Path(self.data_dir) / "cni"


def _agent_config(config) -> AgentConfig:
    """allinone.NodeConfig or AgentConfig → AgentConfig."""
    if isinstance(config, AgentConfig):
        return config
    pki = Path(config.data_dir) / "control-plane" / "pki"
    return AgentConfig(data_dir=config.data_dir, node_name=config.node_name, node_ip=config.node_ip,
                       pod_cidr=config.pod_cidr, cluster_cidr=config.cluster_cidr,
                       cluster_ca=str(pki / "ca.crt"), cluster_ca_key=str(pki / "ca.key"),
                       image_gc=getattr(config, "image_gc", None),
                       eviction=getattr(config, "eviction", None))


# --- 1. who am I ------------------------------------------------------------------------------------
def node_name(config: AgentConfig) -> str:
    return (config.node_name or socket.gethostname()).lower()


def node_ip(config: AgentConfig) -> str:
    """--node-ip, else the only global IPv4 address (network/nodeip.py's rules); a node made of a
    bare network namespace has none, and answers on loopback."""
    import psutil

    from network.errors import NetworkError
    from network.nodeip import choose_node_ip

    # Not the pod bridge's own address (cni0 holds the first of the pod range once a pod ran):
    # after a restart it would otherwise be a candidate, or the only one on a bare node.
    pods = ipaddress.ip_network(config.cluster_cidr, strict=False)
    addrs = [(name, ipaddress.ip_interface(f"{a.address}/{a.netmask}"))
             for name, lst in psutil.net_if_addrs().items() for a in lst
             if a.family == socket.AF_INET and a.netmask
             and ipaddress.ip_address(a.address) not in pods]
    if config.node_ip and any(str(a.ip) == config.node_ip and a.ip.is_loopback for _, a in addrs):
        return config.node_ip           # a single-machine node, reached on loopback
    try:
        return str(choose_node_ip(addrs, node_ip=config.node_ip).ip)
    except NetworkError as e:
        if config.node_ip:
            raise AgentError(str(e)) from e
        if not [a for _, a in addrs if not a.ip.is_loopback]:
            return "127.0.0.1"
        raise AgentError(str(e)) from e


async def pod_cidr(api: ApiClient, config: AgentConfig, name: str) -> str:
    if config.pod_cidr:
        ipaddress.ip_network(config.pod_cidr, strict=True)
        return config.pod_cidr
    loop = asyncio.get_running_loop()
    deadline = loop.time() + config.wait_for_pod_cidr
    while True:
        try:
            got = ((await api.get(NODES, name)).get("spec") or {}).get("podCIDR")
            if got:
                return got
        except NotFound:
            pass
        if loop.time() >= deadline:
            break
        await asyncio.sleep(1)
    # No node IPAM yet: the first /24 of the cluster range (one node per cluster then).
    net = ipaddress.ip_network(config.cluster_cidr, strict=False)
    return str(next(net.subnets(new_prefix=max(24, net.prefixlen))))


# --- 2. the network ---------------------------------------------------------------------------------
def write_cni_config(config: AgentConfig, cidr: str) -> Path:
    """The node's network config, and launchers for our plugins in <data-dir>/cni/bin (found there
    by name, as any CNI runtime finds plugins; run in-process by ours)."""
    from cni.install import default_conflist, install_conflist, install_plugins

    install_plugins(config.cni_dir / "bin")
    conflist = default_conflist(cidr, cluster_cidr=config.cluster_cidr,
                                data_dir=str(config.cni_dir / "ipam"))
    return install_conflist(config.cni_dir / "net.d", conflist)


# --- 3. the runtime ---------------------------------------------------------------------------------
def cni_config(config: AgentConfig):
    from cni.podnet import PodNetworkConfig

    return PodNetworkConfig(conf_dir=str(config.cni_dir / "net.d"),
                            bin_dirs=(str(config.cni_dir / "bin"), "/opt/cni/bin", "/usr/lib/cni"),
                            cache_dir=str(config.cni_dir / "cache"))


def open_runtime(config: AgentConfig):
    """(RuntimeService, ImageService) of nodeagent.cri for this node's directories (blocking)."""
    from nodeagent.cri import open_runtime as cri_open

    # two pod networks made ahead of the pods: RunPodSandbox then skips netns + CNI ADD (cri/spares.py)
    return cri_open(str(config.agent_dir), cni=cni_config(config),
                    image_store=str(Path(config.data_dir) / "images"), spare_sandboxes=2)


# --- 5/6. the pods ----------------------------------------------------------------------------------
def _lookup(api: ApiClient, services: Informer):
    """ConfigMaps and Secrets are read when a container is made (always current); Services come
    from an informer's cache (every container start needs them all)."""
    async def lookup(kind: str, ns: str, name: str):
        if kind == "services":
            if not name:
                return [s for (n, _), s in list(services.cache.items()) if n == ns]
            return services.get(name, ns)
        try:
            return await api.get(RESOURCES[kind], name, ns)
        except NotFound:
            return None
    return lookup


def _token_request(api: ApiClient):
    """POST serviceaccounts/<name>/token (TokenRequest) for volumes.TokenCache: the status, or
    None when the API server does not serve the subresource (404 for the route itself, not for
    a missing ServiceAccount; or 405)."""
    async def request(ns: str, account: str, body: dict) -> dict | None:
        try:
            out = await api.create(SERVICEACCOUNTS, body, ns, subresource="token", name=account)
        except NotFound as e:
            if (e.status.get("details") or {}).get("kind") in ("serviceaccounts", "ServiceAccount"):
                raise
            return None
        except ApiError as e:
            if e.code == 405:
                return None
            raise
        status = out.get("status") or {}
        return status if status.get("token") else None
    return request


async def pleg(runtime, workers, manager=None) -> None:
    """Wake the worker of each pod whose containers changed: on the runtime's events, and by
    relisting every few seconds (the generic PLEG), so that no exit goes unseen."""
    from nodeagent.cri.api import CRIError

    owners: dict[str, str] = {}                # sandbox id → pod uid

    async def owner(sandbox_id: str) -> str | None:
        if sandbox_id not in owners:
            for sb in await runtime.list_pod_sandboxes():
                owners[sb.id] = sb.metadata.uid
        return owners.get(sandbox_id)

    async def events() -> None:
        while True:
            try:
                async for ev in runtime.container_events():
                    uid = await owner(ev.pod_sandbox_id)
                    if uid:
                        workers.wake(uid)
            except (CRIError, NotImplementedError, OSError) as e:
                log.debug("container events: %s", e)
            await asyncio.sleep(1)

    async def relist() -> None:
        seen: dict[str, tuple] = {}
        while True:
            await asyncio.sleep(PLEG_RELIST)
            try:
                sandboxes = await runtime.list_pod_sandboxes()
                containers = await runtime.list_containers()
            except CRIError as e:
                log.warning("relist: %s", e)
                continue
            owners.update({sb.id: sb.metadata.uid for sb in sandboxes})
            if manager is not None:
                manager.learn(sandboxes, containers)
                await manager.housekeeping()
            now: dict[str, list] = {}
            for sb in sandboxes:
                now.setdefault(sb.metadata.uid, []).append((sb.id, sb.state.value))
            for c in containers:
                uid = owners.get(c.pod_sandbox_id)
                if uid:
                    now.setdefault(uid, []).append((c.id, c.state.value))
            snapshot = {uid: tuple(sorted(v)) for uid, v in now.items()}
            for uid, sig in snapshot.items():
                if seen.get(uid) != sig:
                    workers.wake(uid)
            seen = snapshot

    await asyncio.gather(events(), relist())


# The agent's own modules, imported in a worker thread before the agent uses them: an import reads
# and compiles files, ~0.3 s here for these and tens of seconds on an emulated VM, where it stalled
# the event loop (and with it the API server and the node's Lease) for as long.
_AGENT_MODULES = ("nodeagent.cm", "nodeagent.events", "nodeagent.kuberuntime", "nodeagent.nodestatus",
                  "nodeagent.podworkers", "nodeagent.prober", "nodeagent.resources",
                  "nodeagent.status")


def _import_all(names) -> None:
    import importlib

    for n in names:
        importlib.import_module(n)


async def run_node_agent(config, api: ApiClient, *, runtime=None, images=None, cm=None) -> None:
    """Run the agent until cancelled. `runtime`/`images`/`cm` are for tests (fakes)."""
    await asyncio.to_thread(_import_all, _AGENT_MODULES)    # (imports: see _AGENT_MODULES)
    from nodeagent.cm import ContainerManager
    from nodeagent.events import EventRecorder
    from nodeagent.kuberuntime import NodeFacts, RuntimeManager
    from nodeagent.nodestatus import Machine, NodeIdentity, NodeStatus
    from nodeagent.podworkers import PodWorkers
    from nodeagent.prober import Prober
    from nodeagent.resources import lowest_oom_score_adj
    from nodeagent.status import StatusManager

    cfg = _agent_config(config)
    name = node_name(cfg)
    ip = await asyncio.to_thread(node_ip, cfg)
    cidr = await pod_cidr(api, cfg, name)
    cni_conf = None
    if runtime is None:
        cni_conf = await asyncio.to_thread(write_cni_config, cfg, cidr)
        runtime, images = await asyncio.to_thread(open_runtime, cfg)
    if cm is None:
        cm = ContainerManager(enabled=os.geteuid() == 0)
        await asyncio.to_thread(cm.start)
    runtime_name, _ = await runtime.version()
    from nodeagent.eviction import parse_config
    eviction_cfg = cfg.eviction or parse_config()
    machine = await asyncio.to_thread(Machine.measure, cfg.data_dir, eviction_cfg)

    recorder = EventRecorder(api, "kubelet", name)
    informer = Informer(api, PODS, field_selector=f"spec.nodeName={name}")
    status = StatusManager(api, cached_pod=lambda ns, n: informer.get(n, ns))
    facts = NodeFacts(name=name, hostname=socket.gethostname(), memory_capacity=machine.memory,
                      allocatable=machine.allocatable_numbers(), cluster_dns=cfg.cluster_dns,
                      log_root=str(cfg.agent_dir / "logs"), pods_dir=str(cfg.agent_dir / "pods"),
                      min_oom_score_adj=await asyncio.to_thread(lowest_oom_score_adj),
                      node_ips=(ip,) if ip else ())
    services = Informer(api, SERVICES)
    tasks: list[asyncio.Task] = [asyncio.create_task(services.run(), name="service informer")]
    kubelet_api = None
    workers = None
    try:
        try:
            await asyncio.wait_for(services.wait_synced(), 10)
        except asyncio.TimeoutError:
            log.warning("services not listed yet: the first pods may miss their service variables")
        manager = RuntimeManager(runtime, images, cm, recorder, _lookup(api, services), facts,
                                 runtime_name)
        workers = PodWorkers(manager, status, ip, runtime_name)
        manager.prober = workers.prober = Prober(runtime, recorder, workers.wake)
        from nodeagent.volumes import TokenCache
        manager.tokens = TokenCache(_token_request(api))

        def not_ready() -> str | None:
            if cni_conf is not None and not cni_conf.exists():
                return ("container runtime network not ready: NetworkReady=false "
                        "reason:NetworkPluginNotReady message:no CNI configuration file")
            return None

        node = NodeStatus(api, NodeIdentity(name, ip, cfg.data_dir, cidr), machine, runtime.version,
                          not_ready, recorder)
        from nodeagent.eviction import EvictionManager, PodStatsSource
        from nodeagent.imagegc import ImageGC, ImageGCPolicy
        image_gc = ImageGC(runtime, images, str(Path(cfg.data_dir) / "images"),
                           cfg.image_gc or ImageGCPolicy(), node_event=node.event)
        eviction = EvictionManager(
            eviction_cfg, cfg.data_dir, workers.evictable_pods, workers.evict, node.changed,
            image_dir=str(Path(cfg.data_dir) / "images"),
            pod_stats=PodStatsSource(runtime, status.status, str(cfg.agent_dir / "logs"),
                                     str(cfg.agent_dir / "pods"), str(cfg.agent_dir / "storage")),
            reclaim=image_gc.delete_unused, node_event=node.event, cleaned_up=workers.cleaned_up)
        workers.admit_more = eviction.admit
        node.eviction = eviction
        await node.register()

        def on_pod(type_: str, pod: dict, old: dict | None) -> None:
            if type_ == "DELETED":
                workers.remove(pod)
            else:
                workers.update(pod)

        informer.add_handler(on_pod)

        def pods() -> list[dict]:
            """The agent's pods for the kubelet API, with the newest status we have."""
            return [dict(p, status=status.status(p["metadata"]["uid"]) or p.get("status") or {})
                    for p in list(informer.cache.values())]

        kubelet_api = await _serve_kubelet_api(cfg, runtime, pods, name, ip, kubelet_configuration(
            cfg, facts, cidr, eviction_cfg, cfg.image_gc or ImageGCPolicy()))
        tasks += [asyncio.create_task(c, name=n) for n, c in (
            ("image gc", image_gc.run()), ("eviction", eviction.run()),
            ("pod informer", informer.run()), ("status manager", status.run()),
            ("event recorder", recorder.run()), ("node status", node.run_status()),
            ("node lease", node.run_lease()), ("pleg", pleg(runtime, workers, manager)))]
        await informer.wait_synced()
        known = {p["metadata"]["uid"] for p in informer.cache.values()}
        await workers.cleanup_orphans(known)
        log.info("node %s (%s, pods %s) is running %d pods", name, ip, cidr, len(known))
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            if t.exception() is not None:
                raise AgentError(f"{t.get_name()}: {t.exception()}") from t.exception()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if workers is not None:
            await workers.stop()
            workers.prober.close()
        if kubelet_api is not None:
            await kubelet_api.stop()
        close = getattr(runtime, "close", None)
        if close is not None:
            r = close()
            if asyncio.iscoroutine(r):
                await r


def _go_duration(seconds: float) -> str:
    """Go's time.Duration text for whole seconds: 40s, 2m0s, 1h0m0s."""
    s = int(seconds)
    h, m, sec = s // 3600, s % 3600 // 60, s % 60
    return f"{h}h{m}m{sec}s" if h else f"{m}m{sec}s" if m else f"{sec}s"


def kubelet_configuration(cfg: AgentConfig, facts: NodeFacts, pod_cidr: str, eviction,
                          image_gc) -> dict:
    """What /configz shows (the kubelet's KubeletConfiguration, kubelet.config.k8s.io/v1beta1):
    only the settings this agent has and honours, with the values it uses."""
    from nodeagent.nodestatus import LEASE_DURATION, MAX_PODS
    out = {"kind": "KubeletConfiguration", "apiVersion": "kubelet.config.k8s.io/v1beta1",
           "enableServer": cfg.kubelet_port is not None, "address": "0.0.0.0",
           "port": cfg.kubelet_port or 0,
           "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False},
                              "x509": {"clientCAFile": cfg.cluster_ca or ""}},
           "clusterDomain": facts.cluster_domain, "clusterDNS": list(facts.cluster_dns),
           "resolvConf": facts.resolv_conf, "podLogsDir": facts.log_root, "podCIDR": pod_cidr,
           "maxPods": MAX_PODS, "cgroupsPerQOS": True, "cgroupDriver": "cgroupfs",
           "nodeLeaseDurationSeconds": LEASE_DURATION,
           "evictionHard": _thresholds(eviction, hard=True),
           "evictionSoft": _thresholds(eviction, hard=False),
           "evictionMaxPodGracePeriod": eviction.max_pod_grace_period,
           "imageGCHighThresholdPercent": image_gc.high_threshold,
           "imageGCLowThresholdPercent": image_gc.low_threshold,
           "imageMinimumGCAge": _go_duration(image_gc.min_age)}
    return out


def _thresholds(eviction, *, hard: bool) -> dict[str, str]:
    """The thresholds as the flags spell them: a quantity, or a percentage of capacity."""
    from nodeagent.resources import format_quantity
    out = {}
    for t in eviction.thresholds:
        if t.hard == hard:
            v = t.value
            out[t.signal] = (format_quantity(v.quantity, v.binary) if v.quantity is not None
                             else f"{v.fraction * 100:.6g}%")
    return out


async def _serve_kubelet_api(cfg: AgentConfig, runtime, pods, name: str, ip: str,
                             configz: dict | None = None):
    """The kubelet API on :10250 (nodeagent/server): logs, exec, attach, port-forward, stats."""
    if cfg.kubelet_port is None:
        return None
    if not cfg.cluster_ca or not Path(cfg.cluster_ca).exists():
        log.warning("no cluster CA to check the API server's client certificate with: "
                    "the kubelet API (logs, exec, port-forward) is not served")
        return None
    await asyncio.to_thread(_import_all, ("nodeagent.server",))   # aiohttp's server: not on the loop
    from nodeagent.server import kubelet_tls, serve_kubelet_api

    tls = await asyncio.to_thread(kubelet_tls, cfg.agent_dir / "pki", name, [ip],
                                  Path(cfg.cluster_ca),
                                  Path(cfg.cluster_ca_key) if cfg.cluster_ca_key else None)
    return await serve_kubelet_api(runtime, pods, tls, cfg.kubelet_port, node_name=name,
                                   configz=configz)


# --- nodeagent down ---------------------------------------------------------------------------------
def clean_node(data_dir: str, netns: str | None) -> list[str]:
    """Remove every pod the node left (containers, sandboxes and with them IPs, veths and mounts),
    the pods' cgroups, and the node's network objects. Inside the node's network namespace:
    a fresh `nsenter --net` child does it, so no thread of ours calls setns."""
    if netns and os.path.exists(netns):
        from network.netns import namespace_id
        if namespace_id(netns) != namespace_id("/proc/self/ns/net"):
            out = subprocess.run(["nsenter", f"--net={netns}", sys.executable, "-m", "nodeagent.node",
                                  "clean", data_dir], capture_output=True, text=True)
            if out.returncode != 0:
                raise AgentError(f"cleaning the node in {netns}: {out.stderr.strip()[-500:]}")
            return [line for line in out.stdout.splitlines() if line]
    return asyncio.run(_clean(AgentConfig(data_dir=data_dir)))


async def _clean(cfg: AgentConfig) -> list[str]:
    from nodeagent.cm import ContainerManager
    from nodeagent.cri import cleanup

    from nodeagent.volumes import unmount_all

    out: list[str] = []
    uids: set[str] = set()      # this node's pods: only their cgroups are ours to remove (cm.py)
    if cfg.agent_dir.exists():
        from nodeagent.cri.cleanup import pod_uids
        uids = await asyncio.to_thread(pod_uids, str(cfg.agent_dir))
        pods_dir = cfg.agent_dir / "pods"
        uids |= {p.name for p in await asyncio.to_thread(
            lambda: list(pods_dir.iterdir()) if pods_dir.is_dir() else [])}
        problems = await asyncio.to_thread(cleanup, str(cfg.agent_dir), cni=cni_config(cfg))
        # the pods' memory-backed volumes (tmpfs), in case a pod's own removal did not run
        problems += await asyncio.to_thread(unmount_all, cfg.agent_dir / "pods")
        out += [f"left behind: {p}" for p in problems]
        out.append("removed every pod (containers, sandboxes, pod IPs)")
        from cni.podnet import teardown_node
        try:
            changes = await asyncio.to_thread(teardown_node)
        except Exception as e:  # noqa: BLE001 - NetworkError, OSError: say it, go on cleaning
            out.append(f"pod network not removed: {e}")
        else:
            if changes:
                out.append(f"removed the node's pod network (bridge, nftables tables: "
                           f"{len(changes)} objects)")
    cm = ContainerManager(enabled=os.geteuid() == 0)
    for problem in await asyncio.to_thread(cm.cleanup, uids):
        out.append(f"cgroup left: {problem}")
    return out


if __name__ == "__main__" and sys.argv[1:2] == ["clean"]:
    logging.basicConfig(level=logging.WARNING)
    for line in clean_node(sys.argv[2], None):
        print(line)
