"""Capability sets as the kernel sees them: three 64-bit masks per thread.

capget(2)/capset(2) move the effective, permitted and inheritable sets; the bounding and ambient sets
are changed through prctl(2) instead (PR_CAPBSET_DROP, PR_CAP_AMBIENT). /proc/<pid>/status shows the
same masks in hex as CapEff/CapPrm/CapInh/CapBnd/CapAmb, which is how tests and students check them.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterable

from runtime.sys.consts import CAPABILITIES

_NAMES_BY_NUMBER = {v: k for k, v in CAPABILITIES.items()}


def mask_of(names: Iterable[str]) -> int:
    """The bit mask of capability names ("CAP_CHOWN" or "CHOWN"); an unknown name is a ValueError."""
    mask = 0
    for name in names:
        key = name if name.startswith("CAP_") else "CAP_" + name
        try:
            mask |= 1 << CAPABILITIES[key.upper()]
        except KeyError:
            raise ValueError(f"unknown capability {name!r}") from None
    return mask


def names_of(mask: int) -> list[str]:
    """Capability names in a mask, lowest bit first; bits this table does not know show as CAP_<n>."""
    return [_NAMES_BY_NUMBER.get(bit, f"CAP_{bit}") for bit in range(64) if mask >> bit & 1]


@dataclass(frozen=True)
class CapSets:
    """The effective, permitted and inheritable capability masks of one thread."""

    effective: int = 0
    permitted: int = 0
    inheritable: int = 0

    def __str__(self) -> str:
        return (f"CapEff={self.effective:016x} CapPrm={self.permitted:016x} "
                f"CapInh={self.inheritable:016x}")
