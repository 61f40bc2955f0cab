"""Kubernetes resource units → the numbers cgroup files take. Each mapping is a deliberate choice.

Memory ("64Mi", "1G", "128974848"): a Kubernetes quantity, binary suffixes Ki Mi Gi Ti (powers of
1024) or decimal k M G T (powers of 1000), to bytes. memory.max / memory.limit_in_bytes take bytes.

CPU ("0.5", "500m", "2"): millicores, thousandths of one CPU. Two knobs, two meanings:

- A *limit* is a hard cap enforced by the CFS bandwidth controller: in every `period` microseconds
  the cgroup may run `quota` microseconds (summed over all CPUs). quota = millicores * period / 1000
  with the kubelet's period of 100 ms; 500m → "50000 100000" in cpu.max. The kernel refuses quotas
  under 1 ms, so smaller limits are raised to 1000 µs (as the kubelet does).
- A *request* is a relative weight under contention. v1 has cpu.shares (2..262144, default 1024 =
  one CPU's worth: shares = millicores * 1024 / 1000, at least 2). v2 has cpu.weight (1..10000,
  default 100). We convert shares → weight with the formula runc 1.3.2+, crun 1.23+ and Kubernetes
  adopted in 2025: weight = ceil(10^((L² + 125·L)/612 − 7/34)) with L = log2(shares). It maps the
  v1 default 1024 to exactly the v2 default 100 (and 2 → 1, 262144 → 10000). The older linear
  formula 1 + (shares−2)·9999/262142 sent one CPU's request (1024) to weight 39, so on v2 a pod
  asking for a whole CPU got less than half the weight of an ordinary system service; with the
  new one a container keeps the same standing against the rest of the machine on v1 and v2.

Block I/O weight: OCI's 10..1000 (v1 blkio.weight) to v2 io.weight 1..10000, linearly, as runc.
"""

from __future__ import annotations

import math
import re

from runtime.errors import SpecError

_BINARY = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60}
_DECIMAL = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([KMGTPE]i|[kMGTPE]?)$")

CFS_PERIOD_US = 100_000      # the kubelet's CFS period: 100 ms
MIN_QUOTA_US = 1_000         # the kernel's minimum quota
MIN_SHARES, MAX_SHARES = 2, 262_144
MIN_WEIGHT, MAX_WEIGHT = 1, 10_000


def parse_memory(text: str, field: str = "memory") -> int:
    """"64Mi" → 67108864. A bad string is a SpecError naming `field`."""
    m = _QUANTITY.match(text.strip())
    if not m:
        raise SpecError(field, f"{text!r} is not a memory size (examples: 64Mi, 1Gi, 500M, 1048576)")
    number, suffix = m.groups()
    value = float(number) * (_BINARY.get(suffix) or _DECIMAL[suffix])
    if value < 1:
        raise SpecError(field, f"{text!r} is less than one byte")
    return int(math.ceil(value))


def parse_cpus(text: str, field: str = "cpus") -> int:
    """"0.5" or "500m" → 500 millicores."""
    t = text.strip()
    try:
        milli = int(t[:-1]) if t.endswith("m") else round(float(t) * 1000)
    except ValueError:
        raise SpecError(field, f"{text!r} is not a CPU amount (examples: 0.5, 500m, 2)") from None
    if milli <= 0:
        raise SpecError(field, f"{text!r} must be more than 0")
    return milli


def millicores_to_quota(milli: int, period: int = CFS_PERIOD_US) -> int:
    return max(MIN_QUOTA_US, milli * period // 1000)


def millicores_to_shares(milli: int) -> int:
    return min(MAX_SHARES, max(MIN_SHARES, milli * 1024 // 1000))


def shares_to_weight(shares: int) -> int:
    """cpu.shares (v1) → cpu.weight (v2); see the module docstring for why this curve."""
    if shares <= MIN_SHARES:
        return MIN_WEIGHT
    if shares >= MAX_SHARES:
        return MAX_WEIGHT
    level = math.log2(shares)
    exponent = (level * level + 125 * level) / 612.0 - 7.0 / 34.0
    return min(MAX_WEIGHT, max(MIN_WEIGHT, math.ceil(10 ** exponent)))


def blkio_to_io_weight(weight: int) -> int:
    """OCI blockIO.weight 10..1000 → io.weight 1..10000."""
    return 1 + (max(10, min(1000, weight)) - 10) * 9999 // 990
