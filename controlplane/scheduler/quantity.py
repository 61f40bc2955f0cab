"""Resource quantities ("100m", "1Gi", "2", "1e3") as the integers the scheduler adds up.

The scheduler only ever compares and sums requests, so it keeps every resource as an int in its
smallest useful unit: CPU in millicores (as upstream's `MilliCPU`), everything else (memory,
ephemeral-storage, extended resources, pods) in whole units, rounded up as upstream's
`Quantity.Value()` does. Parsing happens here, at the edge; nothing else sees strings.
"""

from __future__ import annotations

import math
from functools import lru_cache
from decimal import Decimal, InvalidOperation

from controlplane.scheduler.errors import SchedulerError

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
            "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
            "P": Decimal("1e15"), "E": Decimal("1e18")}


def _decimal(text: str | int | float) -> Decimal:
    if isinstance(text, (int, float)):
        return Decimal(str(text))
    s = str(text).strip()
    for suffix, mult in _BINARY.items():
        if s.endswith(suffix):
            return _number(s[:-2], text) * mult
    if s[-1:].isalpha() and s[-1] in _DECIMAL:  # "E" is exa; "1e3" ends in a digit
        return _number(s[:-1], text) * _DECIMAL[s[-1]]
    return _number(s, text)


def _number(s: str, whole) -> Decimal:
    try:
        d = Decimal(s)
    except InvalidOperation:
        raise SchedulerError(f"{whole!r} is not a quantity") from None
    if not d.is_finite():
        raise SchedulerError(f"{whole!r} is not a quantity")
    return d


@lru_cache(maxsize=4096)  # a cluster uses few distinct values ("100m", "64Mi"), parsed again and again
def parse(name: str, value: str | int | float) -> int:
    """The quantity of resource `name` as an int: millicores for cpu, whole units otherwise."""
    d = _decimal(value)
    if name == "cpu":
        d *= 1000
    return int(math.ceil(d))


def resource_list(values: dict | None, field: str = "resources") -> dict[str, int]:
    """{"cpu": "500m", "memory": "1Gi"} → {"cpu": 500, "memory": 1073741824}; a bad value raises
    SchedulerError naming the field (`spec.containers[0].resources.requests.cpu: ...`)."""
    out = {}
    for k, v in (values or {}).items():
        try:
            out[k] = parse(k, v)
        except SchedulerError as e:
            raise SchedulerError(f"{field}.{k}: {e}") from None
    return out
