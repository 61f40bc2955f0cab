"""Pod spec → CRI configs: what the runtime is asked to build (kuberuntime_sandbox.go,
kuberuntime_container.go, security_context.go in the kubelet).

    sandbox_config(pod, ...)       PodSandboxConfig: hostname, DNS, host ports, namespaces, cgroup
    container_config(pod, c, ...)  ContainerConfig: command/args and env (expanded), resources,
                                   the merged securityContext, the termination-message file

Everything that needs the API (ConfigMaps, Secrets) is resolved here, on the kubelet side; the
runtime gets plain values. Labels on every sandbox and container (io.kubernetes.pod.uid, ...) are
how a restarted agent tells whose they are: the runtime's own state is the source of truth.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nodeagent.cri.api import (
    ContainerConfig, ContainerMetadata, DNSConfig, Image, Mount, PodSandboxConfig,
    PodSandboxMetadata, PortMapping, SecurityContext)
from nodeagent.envvars import ConfigError, Lookup, environment, expand_command
from nodeagent.resources import container_resources
from nodeagent.volumes import mounts as volume_mounts
from nodeagent.volumes import read_only_volumes

# The labels the kubelet puts on every sandbox and container (pkg/kubelet/types/labels.go).
POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
POD_UID = "io.kubernetes.pod.uid"
CONTAINER_NAME = "io.kubernetes.container.name"
# Annotations (kuberuntime/labels.go): what the status needs after a restart of the agent.
RESTART_COUNT = "io.kubernetes.container.restartCount"
TERMINATION_MESSAGE_PATH = "io.kubernetes.container.terminationMessagePath"
TERMINATION_MESSAGE_POLICY = "io.kubernetes.container.terminationMessagePolicy"
TERMINATION_LOG_HOST = "nodeagent.io/terminationLogHostPath"
# ... and what stopping it needs when the pod is gone from the API (deleted while the agent was
# down): restore_kill_specs below, upstream's restoreSpecsFromContainerLabels.
GRACE_PERIOD = "io.kubernetes.pod.terminationGracePeriod"
DELETION_GRACE_PERIOD = "io.kubernetes.pod.deletionGracePeriod"
PRE_STOP_HANDLER = "io.kubernetes.container.preStopHandler"
CONTAINER_PORTS = "io.kubernetes.container.ports"
INIT = "nodeagent.io/init"

MAX_HOSTNAME = 63
MAX_FQDN = 64             # the kernel's nodename field (64 bytes with the NUL: 64 chars allowed)
CLUSTER_DOMAIN = "cluster.local"


@dataclass(frozen=True)
class NodeFacts:
    """What the configs need to know about this node."""
    name: str
    hostname: str
    memory_capacity: int
    allocatable: dict[str, int] = field(default_factory=dict)   # cpu (milli), memory, ephemeral-storage
    cluster_dns: tuple[str, ...] = ()
    cluster_domain: str = CLUSTER_DOMAIN
    resolv_conf: str = "/etc/resolv.conf"
    hosts_file: str = "/etc/hosts"      # what a hostNetwork pod's /etc/hosts starts from
    log_root: str = "/var/log/pods"
    pods_dir: str = "/var/lib/nodeagent/agent/pods"
    min_oom_score_adj: int = -1000
    node_ips: tuple[str, ...] = ()      # the node's addresses: status.hostIP(s), hostNetwork pod IPs


def pod_key(pod: dict) -> str:
    md = pod["metadata"]
    return f"{md['name']}_{md.get('namespace', 'default')}({md['uid']})"


def pod_labels(pod: dict) -> dict[str, str]:
    md = pod["metadata"]
    return {POD_NAME: md["name"], POD_NAMESPACE: md.get("namespace", "default"), POD_UID: md["uid"]}


def log_directory(node: NodeFacts, pod: dict) -> str:
    md = pod["metadata"]
    return os.path.join(node.log_root, f"{md.get('namespace', 'default')}_{md['name']}_{md['uid']}")


# --- the sandbox ------------------------------------------------------------------------------------
def _host_resolv(path: str) -> DNSConfig:
    servers, searches, options = [], [], []
    try:
        text = Path(path).read_text()
    except OSError:
        return DNSConfig()
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        # parseResolvConf: nameservers accumulate; the last search and options lines win
        # (a `domain` line is not read); a search domain's trailing dot is dropped
        if words[0] == "nameserver" and len(words) > 1:
            servers.append(words[1])
        elif words[0] == "search":
            searches = [w.removesuffix(".") for w in words[1:]]
        elif words[0] == "options":
            options = words[1:]
    return DNSConfig(tuple(servers), tuple(searches), tuple(options))


MAX_NAMESERVERS = 3                       # validation.MaxDNSNameservers
MAX_SEARCH_PATHS, MAX_SEARCH_CHARS = 32, 2048   # ...Expanded (ExpandedDNSConfig, GA)
MAX_SEARCH_PATH_LEN = 253                 # a longer one makes some resolvers abort


def _unique(items) -> list[str]:
    return list(dict.fromkeys(items))     # omitDuplicates: the first of each, in order


def _fit_searches(searches: list[str]) -> tuple[list[str], bool]:
    """formDNSSearchFitsLimits: at most 32 paths, none over 253 characters, the line at most
    2048 characters (cut from the end); True when something was left out."""
    kept = [s for s in searches[:MAX_SEARCH_PATHS] if len(s) <= MAX_SEARCH_PATH_LEN]
    cut = len(kept) < len(searches)
    searches = kept
    while searches and len(" ".join(searches)) > MAX_SEARCH_CHARS:
        searches.pop()
        cut = True
    return searches, cut


def dns_config(pod: dict, node: NodeFacts, warn=None) -> DNSConfig:
    """dnsPolicy + dnsConfig → resolv.conf contents (pkg/kubelet/network/dns: GetPodDNS).
    `warn(message)`: the DNSConfigForming warnings, when limits cut something."""
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    host = _host_resolv(node.resolv_conf)
    if policy == "ClusterFirstWithHostNet":
        policy = "ClusterFirst"
    elif spec.get("hostNetwork") and policy == "ClusterFirst":
        policy = "Default"
    if policy == "ClusterFirst" and not node.cluster_dns:
        policy = "Default"       # the kubelet's fallback when no cluster DNS is configured
    if policy == "ClusterFirst":
        ns = (pod.get("metadata") or {}).get("namespace", "default")
        d = node.cluster_domain
        base = DNSConfig(node.cluster_dns, tuple(_unique((f"{ns}.svc.{d}", f"svc.{d}", d,
                                                          *host.searches))), ("ndots:5",))
    elif policy == "None":
        base = DNSConfig()
    else:
        base = host
    extra = spec.get("dnsConfig") or {}
    servers = _unique([*base.servers, *(extra.get("nameservers") or [])])
    searches = _unique([*base.searches, *(extra.get("searches") or [])])
    opts = {o.split(":")[0]: o for o in base.options}
    for o in extra.get("options") or []:
        name = o.get("name", "")
        opts[name] = f"{name}:{o['value']}" if o.get("value") else name
    if len(servers) > MAX_NAMESERVERS:
        servers = servers[:MAX_NAMESERVERS]
        if warn is not None:
            warn("Nameserver limits were exceeded, some nameservers have been omitted, the "
                 f"applied nameserver line is: {' '.join(servers)}")
    searches, cut = _fit_searches(searches)
    if cut and warn is not None:
        warn("Search Line limits were exceeded, some search paths have been omitted, the "
             f"applied search line is: {' '.join(searches)}")
    return DNSConfig(tuple(servers), tuple(searches), tuple(opts.values()))


def hostname(pod: dict, node: NodeFacts) -> str:
    spec = pod.get("spec") or {}
    if spec.get("hostNetwork"):
        return node.hostname
    return (spec.get("hostname") or pod["metadata"]["name"])[:MAX_HOSTNAME].rstrip("-.")


def host_domain(pod: dict, node: NodeFacts) -> str:
    """`<subdomain>.<namespace>.svc.<cluster domain>`, or "" without a subdomain
    (GeneratePodHostNameAndDomain)."""
    sub = (pod.get("spec") or {}).get("subdomain")
    if not sub:
        return ""
    return f"{sub}.{pod['metadata'].get('namespace', 'default')}.svc.{node.cluster_domain}"


def kernel_hostname(pod: dict, node: NodeFacts) -> str:
    """The sandbox's UTS hostname: the FQDN with setHostnameAsFQDN and a subdomain, else the
    short name (util.GetNodenameForKernel: the kernel's nodename holds 64 characters)."""
    spec = pod.get("spec") or {}
    name, domain = hostname(pod, node), host_domain(pod, node)
    if spec.get("hostNetwork") or not domain or not spec.get("setHostnameAsFQDN"):
        return name
    fqdn = f"{name}.{domain}"
    if len(fqdn) > MAX_FQDN:
        raise ConfigError(f"failed to construct FQDN from pod hostname and cluster domain, FQDN "
                          f"{fqdn} is too long ({MAX_FQDN} characters is the max, {len(fqdn)} "
                          "characters requested)")
    return fqdn


def managed_hosts(pod: dict, node: NodeFacts, pod_ips: tuple[str, ...]) -> str:
    """The pod's /etc/hosts as the kubelet writes it (managedHostsFileContent, or
    nodeHostsFileContent for a hostNetwork pod), hostAliases appended."""
    spec = pod.get("spec") or {}
    aliases = spec.get("hostAliases") or []
    tail = ""
    if aliases:
        tail = "\n# Entries added by HostAliases.\n" + "".join(
            f"{a.get('ip', '')}\t{chr(9).join(a.get('hostnames') or [])}\n" for a in aliases)
    if spec.get("hostNetwork"):
        try:
            node_hosts = Path(node.hosts_file).read_text()
        except OSError as e:
            raise ConfigError(f"reading the node's hosts file: {e}") from e
        return "# Kubernetes-managed hosts file (host network).\n" + node_hosts + tail
    name, domain = hostname(pod, node), host_domain(pod, node)
    text = ("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
            "fe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
    for ip in pod_ips:
        text += f"{ip}\t{name}.{domain}\t{name}\n" if domain else f"{ip}\t{name}\n"
    return text + tail


def _hosts_mount(pod: dict, container: dict, node: NodeFacts, pod_ips: tuple[str, ...]) -> Mount | None:
    """<pod dir>/etc-hosts, bind-mounted read-write at /etc/hosts (makeHostsMount) — unless the
    container mounts something there itself, or the pod has no IP yet and is not hostNetwork.
    Written in place, not renamed over: a running container's bind mount holds the inode."""
    spec = pod.get("spec") or {}
    if not (pod_ips or spec.get("hostNetwork")) or \
            any(vm.get("mountPath") == "/etc/hosts" for vm in container.get("volumeMounts") or []):
        return None
    path = Path(node.pods_dir) / pod["metadata"]["uid"] / "etc-hosts"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(managed_hosts(pod, node, pod_ips))
    os.chmod(path, 0o644)
    return Mount(container_path="/etc/hosts", host_path=str(path))


def sandbox_config(pod: dict, node: NodeFacts, attempt: int, cgroup_parent: str,
                   warn=None) -> PodSandboxConfig:
    """`warn(message)`: DNSConfigForming warnings (given when a sandbox is made, not again for
    each container). ConfigError for `hostUsers: false`: this agent makes no user-namespace
    mappings for pods, and says so as the kubelet does on such a runtime (FailedCreatePodSandBox)
    rather than run the pod with the host's ids."""
    md, spec = pod["metadata"], pod.get("spec") or {}
    if spec.get("hostUsers") is False:
        raise ConfigError("can't set `spec.hostUsers: false`, runtime does not support user "
                          "namespaces")
    ports = []
    for c in spec.get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                ports.append(PortMapping(container_port=p["containerPort"], host_port=p["hostPort"],
                                         protocol=p.get("protocol", "TCP"), host_ip=p.get("hostIP", "")))
    sc = spec.get("securityContext") or {}
    return PodSandboxConfig(
        metadata=PodSandboxMetadata(md["name"], md.get("namespace", "default"), md["uid"], attempt),
        hostname=kernel_hostname(pod, node), log_directory=log_directory(node, pod),
        dns=dns_config(pod, node, warn), port_mappings=tuple(ports),
        labels={**(md.get("labels") or {}), **pod_labels(pod)},
        annotations=dict(md.get("annotations") or {}),
        host_network=bool(spec.get("hostNetwork")), host_ipc=bool(spec.get("hostIPC")),
        host_pid=bool(spec.get("hostPID")), cgroup_parent=cgroup_parent,
        share_pid=bool(spec.get("shareProcessNamespace")) and not spec.get("hostPID"),
        sysctls={s["name"]: s.get("value", "") for s in sc.get("sysctls") or []})


# --- containers -------------------------------------------------------------------------------------
def _seccomp(profile: dict | None, privileged: bool) -> str:
    if privileged or not profile:
        return "Unconfined"       # the kubelet's default without --seccomp-default
    t = profile.get("type")
    if t == "RuntimeDefault":
        return "RuntimeDefault"
    if t == "Localhost":
        return f"localhost/{profile.get('localhostProfile', '')}"
    return "Unconfined"


def security_context(pod: dict, container: dict, image: Image | None) -> SecurityContext:
    """The container's securityContext over the pod's (determineEffectiveSecurityContext), and
    runAsNonRoot checked against the user the process will really have."""
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    csc = container.get("securityContext") or {}

    def pick(key):
        return csc[key] if csc.get(key) is not None else psc.get(key)

    user, group = pick("runAsUser"), pick("runAsGroup")
    if pick("runAsNonRoot"):
        name = f'pod: "{pod_key(pod)}", container: {container["name"]}'
        if user is not None:
            if user == 0:
                raise ConfigError(f"container's runAsUser breaks non-root policy ({name})")
        elif image is not None and image.uid is None and image.username:
            raise ConfigError(f"container has runAsNonRoot and image has non-numeric user "
                              f"({image.username}), cannot verify user is non-root ({name})")
        elif image is None or not image.uid:
            raise ConfigError(f"container has runAsNonRoot and image will run as root ({name})")
    groups = list(psc.get("supplementalGroups") or [])
    if psc.get("fsGroup") is not None:
        groups.append(psc["fsGroup"])
    caps = csc.get("capabilities") or {}
    privileged = bool(csc.get("privileged"))
    ape = csc.get("allowPrivilegeEscalation")
    return SecurityContext(
        run_as_user=user, run_as_group=group, supplemental_groups=tuple(groups),
        privileged=privileged, readonly_rootfs=bool(csc.get("readOnlyRootFilesystem")),
        add_capabilities=tuple(caps.get("add") or ()), drop_capabilities=tuple(caps.get("drop") or ()),
        no_new_privs=ape is False,
        seccomp=_seccomp(csc.get("seccompProfile") or psc.get("seccompProfile"), privileged))


def termination_log_path(node: NodeFacts, uid: str, name: str, attempt: int) -> Path:
    return Path(node.pods_dir) / uid / "containers" / name / f"{attempt}-termination-log"


async def _services(pod: dict, lookup: Lookup) -> list[dict]:
    """The Services whose variables the container gets (getServiceEnvVarMap): the API server's
    own `default/kubernetes` always; with enableServiceLinks (the default) every Service of the
    pod's namespace too, a same-named one there winning."""
    md, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    by_name: dict[str, dict] = {}
    master = await lookup("services", "default", "kubernetes")
    if master:
        by_name["kubernetes"] = master
    if spec.get("enableServiceLinks", True):
        for svc in await lookup("services", md.get("namespace", "default"), "") or []:
            by_name[svc["metadata"]["name"]] = svc
    return list(by_name.values())


async def container_config(pod: dict, container: dict, *, attempt: int, init: bool, node: NodeFacts,
                           lookup: Lookup, image: Image | None,
                           volumes: dict[str, str] | None = None,
                           pod_ips: tuple[str, ...] = ()) -> ContainerConfig:
    """Raises ConfigError (CreateContainerConfigError) for a config that cannot be made.
    `volumes`: the pod's volumes (name → host path, volumes.make); `pod_ips`: the sandbox's
    (the node's for a hostNetwork pod), as the kubelet passes them to makeEnvironmentVariables."""
    md, spec = pod["metadata"], pod.get("spec") or {}
    name = container["name"]
    if spec.get("hostNetwork") and not pod_ips:
        pod_ips = node.node_ips
    env = await environment(pod, container, lookup, node.allocatable, await _services(pod, lookup),
                            pod_ips=tuple(pod_ips), host_ips=node.node_ips)
    mounts: list[Mount] = volume_mounts(container, volumes or {}, read_only_volumes(pod), dict(env))
    hosts = _hosts_mount(pod, container, node, tuple(pod_ips))
    if hosts is not None:
        mounts.append(hosts)
    msg_path = container.get("terminationMessagePath") or "/dev/termination-log"
    termlog = termination_log_path(node, md["uid"], name, attempt)
    # The kubelet's side of the termination message: an empty file of ours, bind-mounted at
    # terminationMessagePath; whatever the program writes there is read back when it exits.
    termlog.parent.mkdir(parents=True, exist_ok=True)
    termlog.touch(mode=0o666, exist_ok=True)
    os.chmod(termlog, 0o666)
    mounts.append(Mount(container_path=msg_path, host_path=str(termlog)))
    return ContainerConfig(
        metadata=ContainerMetadata(name, attempt),
        image=container.get("image", ""),
        command=expand_command(container.get("command") or [], env),
        args=expand_command(container.get("args") or [], env),
        working_dir=container.get("workingDir", ""),
        envs=tuple(env), mounts=tuple(mounts),
        labels={**pod_labels(pod), CONTAINER_NAME: name},
        annotations={RESTART_COUNT: str(attempt), TERMINATION_MESSAGE_PATH: msg_path,
                     TERMINATION_MESSAGE_POLICY: container.get("terminationMessagePolicy", "File"),
                     TERMINATION_LOG_HOST: str(termlog), INIT: "true" if init else "false",
                     **kill_annotations(pod, container)},
        log_path=f"{name}/{attempt}.log",
        stdin=bool(container.get("stdin")), stdin_once=bool(container.get("stdinOnce")),
        tty=bool(container.get("tty")),
        resources=container_resources(pod, container, node.memory_capacity, node.min_oom_score_adj),
        security=security_context(pod, container, image),
        stop_signal=((container.get("lifecycle") or {}).get("stopSignal")))


# --- stopping a container whose pod is gone -------------------------------------------------------
def kill_annotations(pod: dict, container: dict) -> dict[str, str]:
    """What killing the container needs if its pod is no longer to be had (newContainerAnnotations
    in kuberuntime/labels.go): the grace periods, the preStop handler and the ports a named
    httpGet port refers to, as JSON as upstream writes them."""
    md, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    out = {}
    if md.get("deletionGracePeriodSeconds") is not None:
        out[DELETION_GRACE_PERIOD] = str(int(md["deletionGracePeriodSeconds"]))
    if spec.get("terminationGracePeriodSeconds") is not None:
        out[GRACE_PERIOD] = str(int(spec["terminationGracePeriodSeconds"]))
    pre_stop = (container.get("lifecycle") or {}).get("preStop")
    if pre_stop:
        out[PRE_STOP_HANDLER] = json.dumps(pre_stop, separators=(",", ":"))
    if container.get("ports"):
        out[CONTAINER_PORTS] = json.dumps(container["ports"], separators=(",", ":"))
    return out


def restore_kill_specs(labels: Mapping[str, str], annotations: Mapping[str, str]) -> tuple[dict, dict]:
    """(pod, container) rebuilt from a container's labels and annotations — only the fields that
    killing it reads (restoreSpecsFromContainerLabels): the pod's name, namespace, uid and grace
    periods; the container's name, ports and preStop handler. An annotation that does not parse is
    left out, as upstream logs and skips it."""
    def number(key: str) -> int | None:
        try:
            return int(annotations[key])
        except (KeyError, ValueError):
            return None

    def obj(key: str):
        try:
            return json.loads(annotations[key])
        except (KeyError, ValueError):
            return None

    md = {"name": labels.get(POD_NAME, ""), "namespace": labels.get(POD_NAMESPACE, ""),
          "uid": labels.get(POD_UID, "")}
    if number(DELETION_GRACE_PERIOD) is not None:
        md["deletionGracePeriodSeconds"] = number(DELETION_GRACE_PERIOD)
    spec = {}
    if number(GRACE_PERIOD) is not None:
        spec["terminationGracePeriodSeconds"] = number(GRACE_PERIOD)
    container: dict = {"name": labels.get(CONTAINER_NAME, "")}
    if isinstance(obj(CONTAINER_PORTS), list):
        container["ports"] = obj(CONTAINER_PORTS)
    if isinstance(obj(PRE_STOP_HANDLER), dict):
        container["lifecycle"] = {"preStop": obj(PRE_STOP_HANDLER)}
    return {"metadata": md, "spec": spec}, container


def kill_grace(pod: dict) -> float:
    """setTerminationGracePeriod for a pod restored from labels: its deletion grace period if it
    had one, else its terminationGracePeriodSeconds, else the minimum (2 s)."""
    from nodeagent.kuberuntime.lifecycle import MIN_GRACE

    md, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    for g in (md.get("deletionGracePeriodSeconds"), spec.get("terminationGracePeriodSeconds")):
        if g is not None:
            return float(g)
    return float(MIN_GRACE)
