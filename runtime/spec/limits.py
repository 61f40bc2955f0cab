"""Which resource limits the kernel can take: checked before any cgroup is made.

Without this, a bad value reaches the cgroup file and the user reads the kernel's answer about a
file they never named (`writing '-100' to .../memory.limit_in_bytes: Invalid argument`), or, worse,
a value the kernel takes but that cannot mean what was asked: memory.limit_in_bytes = 0 is
accepted and the container's init is OOM-killed the moment it joins. So every Resources is checked
here, by bundle.py at the config.json edge and by create.py for every other caller, and a problem
names the field as config.json spells it.

The ranges are the kernel's (both cgroup versions), with OCI's -1 for "no limit":

    memory.limit, .reservation   1 .. 2^63-1 bytes, or -1    (0 would OOM-kill the init at once)
    memory.swap                  memory + swap, so >= memory.limit, or -1
    cpu.shares                   2 .. 262144                 (v1 cpu.shares; v2 weight converts)
    cpu.period                   1000 .. 1000000 µs          (CFS: 1 ms to 1 s)
    cpu.quota                    1000 µs .. , or -1          (at least 1 ms per period)
    pids.limit                   1 .. 4194304, or 0/-1       (PID_MAX_LIMIT; pids.max takes no more)
    blockIO.weight               10 .. 1000
"""

from __future__ import annotations

import re

from runtime.errors import SpecError

_I64_MAX = 2**63 - 1
PID_MAX_LIMIT = 4 * 1024 * 1024


def check_resources(resources, source: str | None = None, prefix: str = "linux.resources") -> None:
    """Raise SpecError for the first value of `resources` (runtime.spec.model.Resources) that no
    cgroup can take."""
    problem = first_problem(resources)
    if problem is not None:
        field, text = problem
        raise SpecError(f"{prefix}.{field}", text, source)


def first_problem(r) -> tuple[str, str] | None:
    """(field below linux.resources, what is wrong) or None."""
    if (m := r.memory) is not None:
        for name, value in (("limit", m.limit), ("reservation", m.reservation), ("swap", m.swap)):
            if value is not None and (value < -1 or value == 0 or value > _I64_MAX):
                return f"memory.{name}", (f"{value} is not a valid limit: give bytes (1 to 2^63-1), "
                                          "or -1 for no limit")
        if m.swap not in (None, -1) and m.limit not in (None, -1) and m.swap < m.limit:
            return "memory.swap", (f"{m.swap} is below memory.limit ({m.limit}): OCI's swap counts "
                                   "memory plus swap, so it cannot be less than the memory limit")
        if m.swappiness is not None and not 0 <= m.swappiness <= 100:
            return "memory.swappiness", f"{m.swappiness} is not valid: it must be from 0 to 100"
    if (c := r.cpu) is not None:
        if c.shares is not None and not 2 <= c.shares <= 262144:
            return "cpu.shares", f"{c.shares} is not a valid weight: it must be from 2 to 262144"
        if c.period is not None and not 1000 <= c.period <= 1_000_000:
            return "cpu.period", (f"{c.period} is not a valid period: it must be from 1000 to 1000000 "
                                  "microseconds")
        if c.quota is not None and c.quota != -1 and not 1000 <= c.quota <= _I64_MAX:
            return "cpu.quota", (f"{c.quota} is not a valid quota: give at least 1000 microseconds "
                                 "per period, or -1 for no limit")
    if (c := r.cpu) is not None:
        for name, value in (("cpus", c.cpus), ("mems", c.mems)):
            if value is not None and not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", value):
                return f"cpu.{name}", f"{value!r} is not a list of ranges like 0-2,4"
    for i, h in enumerate(r.hugepage_limits):
        if not re.fullmatch(r"\d+[KMG]B", h.page_size):
            return f"hugepageLimits[{i}].pageSize", f"{h.page_size!r} is not a page size like 2MB or 1GB"
    if (p := r.pids) is not None and not -1 <= p.limit <= PID_MAX_LIMIT:
        return "pids.limit", (f"{p.limit} is not a valid limit: it must be from 1 to {PID_MAX_LIMIT}, "
                              "or 0 or -1 for no limit")
    if (b := r.block_io) is not None and b.weight is not None and not 10 <= b.weight <= 1000:
        return "blockIO.weight", f"{b.weight} is not a valid weight: it must be from 10 to 1000"
    return None
