"""The sysctls a Kubernetes node needs, and reading them.

net.ipv4.ip_forward=1
    Pod traffic is routed by the node: from a pod's veth to another node, or to the outside.
net.bridge.bridge-nf-call-iptables=1 (and -ip6tables)
    Packets switched *inside* a bridge (pod to pod on one node) normally skip the IP layer's
    netfilter hooks, so Service NAT rules never see them and replies bypass conntrack (seen here:
    ~45% of same-node Service connections time out with 0). Setting it sends bridged IPv4 frames
    through the IP hooks. The files exist only when br_netfilter is loaded or built in.

Sysctls are per network namespace for net.*: a simulated node (a netns) has its own copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class NodeSysctl:
    name: str
    want: str
    why: str
    fix: str


NODE_SYSCTLS = (
    NodeSysctl("net.ipv4.ip_forward", "1", "the node routes pod traffic",
               "sysctl -w net.ipv4.ip_forward=1"),
    NodeSysctl("net.bridge.bridge-nf-call-iptables", "1",
               "bridged pod-to-pod traffic must pass the NAT rules of Services",
               "modprobe br_netfilter && sysctl -w net.bridge.bridge-nf-call-iptables=1"),
)


def sysctl_path(name: str, proc: Path = Path("/proc")) -> Path:
    """`net.ipv4.ip_forward` or, as sysctl(8) also accepts, `net/ipv4/conf/eth0.100/route_localnet`:
    the slash form is for keys with an interface name in them, which may itself contain dots."""
    return proc / "sys" / (name if "/" in name else name.replace(".", "/"))


def read_sysctl(name: str, proc: Path = Path("/proc")) -> str | None:
    """The value of sysctl `name`, or None when the kernel has no such key here."""
    try:
        return sysctl_path(name, proc).read_text().strip()
    except FileNotFoundError:
        return None


def ensure_sysctl(name: str, value: str, why: str = "", proc: Path = Path("/proc")) -> list:
    """Set sysctl `name` to `value` in *this process's* network namespace (net.* keys are per
    namespace: a simulated node has its own). Returns the Change, or [] if it already had it."""
    from network.changes import Change
    from network.errors import NetworkError

    path = sysctl_path(name, proc)
    try:
        if path.read_text().strip() == value:
            return []
        path.write_text(value)
    except OSError as e:
        raise NetworkError(f"set sysctl {name}={value}", e.strerror or str(e), e.errno) from e
    return [Change("set", f"sysctl {name}={value}", f"sysctl -w {name}={value}", why)]
