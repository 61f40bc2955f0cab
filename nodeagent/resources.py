"""Requests and limits: quantities, the pod's QoS class, and what they become in cgroups.

A pod's `resources` say two different things, and the kernel gets each through a different knob:

    requests  "reserve this much for me": the scheduler sums them; on the node, requests.cpu
              becomes a *relative* weight (cpu.shares on v1, cpu.weight on v2) that matters only
              when CPUs are contended.
    limits    "never more than this": limits.cpu becomes a CFS quota per period (cpu.cfs_quota_us
              / cpu.max), limits.memory a hard ceiling (memory.limit_in_bytes / memory.max) that
              the OOM killer enforces — exit code 137, reason OOMKilled.

From the same numbers the kubelet derives the pod's QoS class (pkg/apis/core/v1/helper/qos):

    Guaranteed  every container has cpu and memory limits, and requests equal to them
    BestEffort  no container has any cpu or memory request or limit
    Burstable   everything else

The class decides where the pod's cgroup goes (cm.py: kubepods/, kubepods/burstable/,
kubepods/besteffort/) and its oom_score_adj (who the kernel kills first when the node runs out).
The arithmetic below is the kubelet's own (pkg/kubelet/cm/helpers_linux.go, qos/policy.go).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from nodeagent.cri.api import LinuxContainerResources
from nodeagent.errors import AgentError

# pkg/kubelet/cm/helpers_linux.go
MIN_SHARES = 2
SHARES_PER_CPU = 1024
QUOTA_PERIOD = 100_000          # µs: the CFS period the kubelet always uses
MIN_QUOTA_PERIOD = 1_000
# pkg/kubelet/qos/policy.go
GUARANTEED_OOM_SCORE_ADJ = -997
BESTEFFORT_OOM_SCORE_ADJ = 1000

_SUFFIX = {"": 1, "m": Decimal("0.001"), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
           "P": 10**15, "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
           "Pi": 2**50, "Ei": 2**60, "n": Decimal("1e-9"), "u": Decimal("1e-6")}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)$")


class QuantityError(AgentError):
    pass


def parse_quantity(value) -> Decimal:
    """A Kubernetes quantity ("100m", "64Mi", "1.5", "129e6") as an exact decimal."""
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    m = _QUANTITY.match(str(value).strip())
    if not m:
        raise QuantityError(f"quantity {value!r} is not a valid Kubernetes quantity")
    try:
        return Decimal(m.group(1)) * Decimal(_SUFFIX[m.group(2)])
    except InvalidOperation:
        raise QuantityError(f"quantity {value!r} is not a valid Kubernetes quantity") from None


def millicpu(value) -> int:
    return math.ceil(parse_quantity(value) * 1000)


def bytes_of(value) -> int:
    return math.ceil(parse_quantity(value))


def is_binary(text: str) -> bool:
    """Was the quantity written with a binary suffix (Ki, Mi, ...)? resource.Quantity remembers
    that (its Format) and prints the value back the same way."""
    return str(text).strip()[-2:] in ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei")


def format_quantity(n: int, binary: bool = True) -> str:
    """An integer as resource.Quantity's String() prints it (CanonicalizeBytes): BinarySI with the
    largest power of 1024 that divides it exactly ("51200Ki" is "50Mi", 1536 stays "1536"),
    below 1024 plain; DecimalSI likewise with powers of 1000 ("1000" is "1k")."""
    if n == 0:
        return "0"
    base, suffixes = (1024, ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")) if binary and abs(n) >= 1024 \
        else (1000, ("", "k", "M", "G", "T", "P", "E"))
    i = 0
    while n % base == 0 and i < len(suffixes) - 1:
        n //= base
        i += 1
    return f"{n}{suffixes[i]}"


# --- per container ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Amounts:
    """One container's cpu (millicores) and memory (bytes); None where not given."""
    cpu_request: int | None = None
    cpu_limit: int | None = None
    memory_request: int | None = None
    memory_limit: int | None = None


def amounts(container: dict) -> Amounts:
    res = container.get("resources") or {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    cpu_lim = millicpu(lim["cpu"]) if "cpu" in lim else None
    mem_lim = bytes_of(lim["memory"]) if "memory" in lim else None
    # The API server defaults a missing request to the limit; do it here too for objects that
    # did not pass through that defaulting (a static manifest, an older server).
    cpu_req = millicpu(req["cpu"]) if "cpu" in req else cpu_lim
    mem_req = bytes_of(req["memory"]) if "memory" in req else mem_lim
    return Amounts(cpu_req, cpu_lim, mem_req, mem_lim)


def _all_containers(pod: dict) -> list[dict]:
    spec = pod.get("spec") or {}
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def qos_class(pod: dict) -> str:
    """Guaranteed, Burstable or BestEffort (GetPodQOS, cpu and memory only)."""
    containers = [amounts(c) for c in _all_containers(pod)]
    if all(a == Amounts() for a in containers):
        return "BestEffort"
    for a in containers:
        if None in (a.cpu_limit, a.memory_limit):
            return "Burstable"
        if a.cpu_request != a.cpu_limit or a.memory_request != a.memory_limit:
            return "Burstable"
    return "Guaranteed"


def shares(milli: int | None) -> int:
    """cpu.shares for a request in millicores (MilliCPUToShares): none or 0 → the minimum, 2."""
    if not milli:
        return MIN_SHARES
    return max(MIN_SHARES, milli * SHARES_PER_CPU // 1000)


def quota(milli: int | None, period: int = QUOTA_PERIOD) -> int | None:
    """CFS quota (µs per period) for a limit in millicores (MilliCPUToQuota); None: no limit."""
    if not milli:
        return None
    return max(MIN_QUOTA_PERIOD, milli * period // 1000)


def oom_score_adj(pod: dict, container: dict, memory_capacity: int) -> int:
    """GetContainerOOMScoreAdjust: -997 Guaranteed, 1000 BestEffort, in between by the share of
    the node's memory the container requested (more requested → less likely to be killed)."""
    cls = qos_class(pod)
    if cls == "Guaranteed":
        return GUARANTEED_OOM_SCORE_ADJ
    if cls == "BestEffort":
        return BESTEFFORT_OOM_SCORE_ADJ
    request = amounts(container).memory_request or 0
    adj = 1000 - (1000 * request) // max(1, memory_capacity)
    if adj < 1000 + GUARANTEED_OOM_SCORE_ADJ:
        return 1000 + GUARANTEED_OOM_SCORE_ADJ
    if adj == BESTEFFORT_OOM_SCORE_ADJ:
        return adj - 1
    return adj


def container_resources(pod: dict, container: dict, memory_capacity: int,
                        min_oom_score_adj: int = -1000) -> LinuxContainerResources:
    """generateLinuxContainerResources: what the runtime writes into the container's cgroup.
    `min_oom_score_adj`: the lowest value this node may set (lowering needs CAP_SYS_RESOURCE,
    which a node inside a sandbox may lack; the kubelet itself runs at -999 and may)."""
    a = amounts(container)
    q = quota(a.cpu_limit)
    return LinuxContainerResources(
        cpu_shares=shares(a.cpu_request), cpu_quota=q, cpu_period=QUOTA_PERIOD if q else None,
        memory_limit_in_bytes=a.memory_limit,
        oom_score_adj=max(min_oom_score_adj, oom_score_adj(pod, container, memory_capacity)))


def lowest_oom_score_adj() -> int:
    """Probe, in a throw-away child, whether a process of ours may lower its oom_score_adj; if
    not, our own value is the floor (children inherit it and may only go up)."""
    import subprocess
    try:
        own = int(open("/proc/self/oom_score_adj").read())
    except (OSError, ValueError):
        return -1000
    probe = subprocess.run(["sh", "-c", f"echo {max(-1000, own - 1)} > /proc/self/oom_score_adj"],
                           capture_output=True)
    return -1000 if probe.returncode == 0 else own


# --- per pod ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PodLimits:
    """The pod cgroup's knobs (ResourceConfigForPod): shares from the summed requests; a cpu or
    memory ceiling only when *every* container has that limit (one unlimited container makes the
    pod unlimited)."""
    cpu_shares: int
    cpu_quota: int | None
    memory_limit: int | None


def pod_limits(pod: dict) -> PodLimits:
    spec = pod.get("spec") or {}
    apps = [amounts(c) for c in spec.get("containers") or []]
    inits = [amounts(c) for c in spec.get("initContainers") or []]

    def total(field: str, need_all: bool) -> int | None:
        values = [getattr(a, field) for a in apps]
        if need_all and (not values or any(v is None for v in values)):
            return None
        s = sum(v or 0 for v in values)
        # Init containers run one at a time, before the app containers: the pod needs the larger
        # of "the biggest init container" and "all app containers together".
        init_max = [getattr(a, field) for a in inits]
        if need_all and any(v is None for v in init_max):
            return None
        return max([s, *[v or 0 for v in init_max]])

    cls = qos_class(pod)
    cpu_req = total("cpu_request", False)
    return PodLimits(cpu_shares=MIN_SHARES if cls == "BestEffort" else shares(cpu_req),
                     cpu_quota=quota(total("cpu_limit", True)),
                     memory_limit=total("memory_limit", True))
