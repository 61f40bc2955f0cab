"""Our CNI plugins. Each module defines PLUGIN (a cni.skel.Plugin) and main() for its console script.

    bridge.py     nodeagent-bridge      veth pair into the pod, node side on a bridge; IPAM; ipMasq
    hostlocal.py  nodeagent-host-local  IPAM: addresses from ranges, one file per IP (cni/ipam/)
    loopback.py   nodeagent-loopback    brings the pod's `lo` up
    portmap.py    nodeagent-portmap     hostPort: DNAT from the node's address to the pod, via nftables

The names carry a `nodeagent-` prefix so that installing them into /opt/cni/bin never replaces the
reference plugins (`bridge`, `host-local`, ...), and a config says plainly which one it means.
"""
