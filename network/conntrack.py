"""Connection tracking: forgetting the flows a new DNAT rule has to catch.

conntrack decides a flow's NAT once, on its first packet; every later packet follows that decision.
A UDP client already sending to a port before a hostPort's DNAT existed (a DNS client retrying, a
syslog or metrics sender) has an entry that says "no NAT, to the node itself" — and as its timeout
restarts with each packet, it keeps that entry for as long as it keeps sending: the new rule never
sees its packets. Deleting the entries makes the next packet a new flow, which the rule catches.
TCP needs none of this: each connection starts a new flow.

The reference CNI portmap plugin does the same after adding its rules (deletePortmapStaleConnections:
UDP entries whose original destination port is a hostPort). The kernel filters the dump for us
(CTA_FILTER, Linux 5.8+), so only the matching entries come back.
"""

from __future__ import annotations

import errno
import socket

from pyroute2 import Conntrack
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

from network.errors import NetworkError, from_netlink

PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "sctp": socket.IPPROTO_SCTP}


def delete_flows_to_port(protocol: str, port: int) -> int:
    """Delete this namespace's IPv4 conntrack entries of `protocol` whose original destination
    port is `port`; return how many went. An entry that vanishes meanwhile is not an error."""
    what = f"delete conntrack entries for {protocol} port {port}"
    deleted = 0
    try:
        with Conntrack() as ct:
            match = NFCTAttrTuple(proto=PROTOCOLS[protocol], dport=port)
            for entry in list(ct.dump_entries(tuple_orig=match)):
                try:
                    ct.entry("del", tuple_orig=entry.tuple_orig)
                    deleted += 1
                except NetlinkError as e:
                    if e.code != errno.ENOENT:  # expired between the dump and the delete
                        raise
    except NetlinkError as e:
        raise from_netlink(what, e) from e
    except OSError as e:  # no nfnetlink_conntrack in this kernel, or no permission
        raise NetworkError(what, e.strerror or str(e), e.errno) from e
    return deleted
