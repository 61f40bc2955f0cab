"""What an operation did to the kernel, as a list a human can read (`--explain`).

Every operation in this package is idempotent: asked to make something so, it first looks, and
changes only what differs. It returns the list of Change records it made — empty when everything
was already in place, which is how a test (or a student) can see that running it twice is safe.

Each Change carries the command a student could have typed to do the same by hand (`ip link add
...`, `nft add element ...`), so `--explain` doubles as a lesson in iproute2 and nftables.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Change:
    """One change made to the kernel's network state.

    verb     "create", "delete", "set", "add" or "remove"
    what     the object, precisely: "veth pair vethc0ffee01 <-> eth0 (in /run/netns/p1)"
    command  the equivalent command line (iproute2 / nft / sysctl syntax)
    why      one sentence on why this is needed (shown by --explain)
    """

    verb: str
    what: str
    command: str = ""
    why: str = ""

    def line(self) -> str:
        return f"{self.verb} {self.what}"


def explain(changes: Iterable[Change], verbose: bool = True) -> str:
    """Render changes one per line; with `verbose`, add the why and the equivalent command."""
    out = []
    for c in changes:
        out.append(f"- {c.line()}")
        if verbose and c.why:
            out.append(f"    why: {c.why}")
        if verbose and c.command:
            out.append(f"    cmd: {c.command}")
    return "\n".join(out) if out else "(nothing to change: already in place)"
