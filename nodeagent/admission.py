"""Pod admission on the node: may this pod run here, next to the pods already admitted?
(The kubelet's canAdmitPod and lifecycle/predicate.go.)

The scheduler normally keeps a node from being given a pod it cannot run; but a pod can name its
node itself (spec.nodeName), or two schedulers can race, so the kubelet checks again before it
starts anything — with the scheduler's own filters (generalFilter). A pod that fails is
*rejected*: it never gets a sandbox, an event is recorded with the failed filter as its reason,
and its status becomes phase Failed with

    reason   the filter's name (NodePorts)
    message  "Pod was rejected: Predicate NodePorts failed: node(s) didn't have free ports for
             the requested pod ports"

Checked here, in the kubelet's order: the pod's sysctls (the SysctlForbidden admit handler: only
the safe, namespaced ones of sysctl/safe_sysctls.go — no --allowed-unsafe-sysctls here — and
none of the host's own namespaces: a net.* sysctl of a hostNetwork pod, an IPC one of a hostIPC
pod), then host ports (the NodePorts filter). A host port is (hostIP, protocol, port); an
empty hostIP means 0.0.0.0, which takes the port on every address — so it conflicts with any use
of that port and protocol, and a specific address conflicts with itself and with 0.0.0.0
(the scheduler's HostPortInfo.CheckConflict).

The pods checked against are the node's *active* ones: admitted and not yet terminated (a pod
still in its grace period keeps its ports until its containers are gone).
"""

from __future__ import annotations

from dataclasses import dataclass

NODE_PORTS = "NodePorts"
NODE_PORTS_REASON = "node(s) didn't have free ports for the requested pod ports"
ANY_IP = "0.0.0.0"


@dataclass(frozen=True)
class Rejection:
    reason: str         # the event's reason and status.reason
    message: str        # the event's message; the status says "Pod was rejected: " + this

    def status(self, qos_class: str | None = None) -> dict:
        """The status of a rejected pod (the kubelet's rejectPod)."""
        out = {"phase": "Failed", "reason": self.reason, "message": "Pod was rejected: " + self.message}
        if qos_class:
            out["qosClass"] = qos_class
        return out


SYSCTL_FORBIDDEN = "SysctlForbidden"
# sysctl/safe_sysctls.go (every kernel version condition there is met by a kernel ≥ 4.15)
SAFE_SYSCTLS = frozenset((
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem"))


def _dotted(name: str) -> str:
    """ConvertSysctlVariableToDotsSeparator: `net/ipv4/x.y` is `net.ipv4.x/y`."""
    sep = next((ch for ch in name if ch in "./"), ".")
    return name if sep == "." else name.translate(str.maketrans("./", "/."))


def _namespace_of(name: str) -> str:
    """The kernel namespace a sysctl belongs to (sysctl/namespace.go), or ""."""
    if name == "kernel.sem" or name.startswith(("kernel.shm", "kernel.msg", "fs.mqueue.")):
        return "ipc"
    return "net" if name.startswith("net.") else ""


def check_sysctls(pod: dict) -> Rejection | None:
    spec = pod.get("spec") or {}
    for s in ((spec.get("securityContext") or {}).get("sysctls") or []):
        name = _dotted(s.get("name", ""))
        if name not in SAFE_SYSCTLS:
            why = f'"{name}" not allowlisted'
        elif (ns := _namespace_of(name)) == "net" and spec.get("hostNetwork") or \
                ns == "ipc" and spec.get("hostIPC"):
            why = f'"{name}" not allowed with host {ns} enabled'
        else:
            continue
        return Rejection(SYSCTL_FORBIDDEN, f"forbidden sysctl: {why}")
    return None


def host_ports(pod: dict) -> set[tuple[str, str, int]]:
    """(hostIP, protocol, hostPort) of every container port that asks for a host port."""
    spec = pod.get("spec") or {}
    out = set()
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            for p in c.get("ports") or []:
                port = p.get("hostPort") or 0
                if port > 0:
                    out.add((p.get("hostIP") or ANY_IP, (p.get("protocol") or "TCP").upper(), int(port)))
    return out


def _conflicts(want: tuple[str, str, int], used: set[tuple[str, str, int]]) -> bool:
    ip, proto, port = want
    if ip == ANY_IP:
        return any(u[1] == proto and u[2] == port for u in used)
    return (ip, proto, port) in used or (ANY_IP, proto, port) in used


def admit(pod: dict, active: list[dict]) -> Rejection | None:
    """None if the pod may run beside `active` (the node's admitted, not terminated pods)."""
    rejected = check_sysctls(pod)
    if rejected is not None:
        return rejected
    want = host_ports(pod)
    if want:
        used: set[tuple[str, str, int]] = set()
        for other in active:
            used |= host_ports(other)
        if any(_conflicts(w, used) for w in want):
            return Rejection(NODE_PORTS, f"Predicate {NODE_PORTS} failed: {NODE_PORTS_REASON}")
    return None
