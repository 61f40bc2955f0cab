"""Names the kernel keeps for a container: its hostname.

The UTS namespace holds a hostname of at most 64 bytes (HOST_NAME_MAX), and the kernel takes any
bytes at all — a newline too, which then breaks every tool that prints `hostname` into a line of
its own (logs, /etc/hosts, shell prompts). runc passes anything through; we accept what a hostname
is for people and for DNS: letters, digits, '-', '.' and '_', up to 64 of them. A refusal shows
the start of a long name, never the whole of it.
"""

from __future__ import annotations

import re

from runtime.errors import SpecError

HOST_NAME_MAX = 64
_ALLOWED = re.compile(r"[A-Za-z0-9._-]+")


def shown(name: str, limit: int = 24) -> str:
    """`name` for a message: quoted, and cut short if long."""
    return repr(name) if len(name) <= limit else f"{name[:limit]!r}… ({len(name)} characters)"


def check_hostname(name: str, field: str = "hostname", source: str | None = None) -> None:
    if len(name.encode()) > HOST_NAME_MAX:
        raise SpecError(field, f"{shown(name)} is longer than the kernel's {HOST_NAME_MAX}-byte limit "
                        "for a hostname", source)
    if not _ALLOWED.fullmatch(name):
        raise SpecError(field, f"{shown(name)} is not a valid hostname: use letters, digits, '-', '.' "
                        "and '_' (no spaces, newlines or other control characters)", source)
