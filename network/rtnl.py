"""Netlink sessions (pyroute2 IPRoute) for the node's namespace and for a pod's.

`import pyroute2` costs ~110 ms here, so it happens in this module only (and in conntrack.py, for
netfilter's netlink), and this module is imported only by code that really talks netlink (links, addresses, routes, vxlan) — never by the CNI
executor, the IPAM plugin or the CLI's startup.

    with node_session() as ipr:                   # the namespace this process is in
        ...
    with pod_session(access, "/run/netns/p1") as pod:   # a socket made inside the pod's namespace
        ...

A session is used by one thread at a time and closed after use (each open is cheap: ~1 ms; the
pod's costs one fork in the netns helper on top).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from network.errors import from_netlink
from network.netns import NetnsAccess

__all__ = ["IPRoute", "NetlinkError", "node_session", "pod_session", "call"]


@contextlib.contextmanager
def node_session() -> Iterator[IPRoute]:
    ipr = IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


@contextlib.contextmanager
def pod_session(access: NetnsAccess, netns_path: str) -> Iterator[IPRoute]:
    """A session whose socket was created inside `netns_path`. Raises NetnsGone if it is gone."""
    fd = access.netlink_socket(netns_path)
    try:
        ipr = IPRoute(fileno=fd)   # IPRoute owns the fd from here on and closes it
    except BaseException:
        os.close(fd)
        raise
    try:
        yield ipr
    finally:
        ipr.close()


def call(what: str, fn, *args, **kwargs):
    """Run one pyroute2 request; a NetlinkError becomes a NetworkError saying what we tried."""
    try:
        return fn(*args, **kwargs)
    except NetlinkError as e:
        raise from_netlink(what, e) from e
