"""The one error type of the network package, and its few refinements.

Every failure that leaves this package is a NetworkError naming what we tried to do and to which
object ("add address 10.244.1.5/24 to eth0 in /run/netns/pod1: [Errno 17] File exists"), raised
`from` the underlying OSError or pyroute2 NetlinkError, so a user reads one line and a developer
still gets the chain.
"""

from __future__ import annotations

import errno as _errno


class NetworkError(Exception):
    """A network operation failed. `errno` is set when the kernel (or nft) gave one."""

    def __init__(self, what: str, reason: str = "", errno: int | None = None):
        self.what = what
        self.reason = reason
        self.errno = errno
        super().__init__(f"{what}: {reason}" if reason else what)


class NetnsGone(NetworkError):
    """The network namespace a path refers to no longer exists (deleted, or the path is stale).

    CNI DEL must succeed in this case ("DEL after the netns is gone"), so callers catch it."""


class NftError(NetworkError):
    """`nft` refused a batch. `stderr` holds nft's own message, which points at the failing command."""

    def __init__(self, what: str, stderr: str, errno: int | None = None):
        self.stderr = stderr
        first = stderr.strip().splitlines()[0] if stderr.strip() else "nft failed"
        super().__init__(what, first, errno)


def from_netlink(what: str, exc: BaseException) -> NetworkError:
    """Translate a pyroute2 NetlinkError (or an OSError) into a NetworkError naming the operation."""
    code = getattr(exc, "code", None) or getattr(exc, "errno", None)
    reason = f"[Errno {code}] {_errno.errorcode.get(code, '?')}: {_strerror(code)}" if code else str(exc)
    return NetworkError(what, reason, code)


def _strerror(code: int) -> str:
    import os

    return os.strerror(code)
