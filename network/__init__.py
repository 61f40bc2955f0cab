"""network — the node's networking primitives: netlink (pyroute2), nftables (`nft -j`), sysctls.

Place in the layer map (DEVELOPERS.md):

    cni ──► network ──► runtime.sys        network knows nothing of pods, CNI or the API.

Operations here are idempotent and report what they changed (changes.py), so the CNI plugins and
`--explain` can show a student exactly what happened to the kernel — and the command that would
have done it by hand.

    changes.py    the Change record and its rendering
    errors.py     NetworkError (and NetnsGone, NftError)
    nshelper.py   the helper process that enters namespaces (the only setns in this package)
    netns.py      namespace handles (/run/netns-style bind mounts); reaching the helper
    rtnl.py       pyroute2 sessions in the node's or a pod's namespace (with conntrack.py, the only
                  pyroute2 imports: each costs ~110 ms, paid only by code that talks netlink)
    links.py      bridges, veth pairs, bridge ports
    addrs.py      addresses and routes (ours carry protocol 199)
    vxlan.py      the VXLAN device with static FDB and neighbour entries
    crossnode.py  routes to other nodes' pods: host-gw or VXLAN, reconciled from the node list
    nodeip.py     choosing the node IP explicitly (the Vagrant NAT trap)
    nft.py        nftables transactions through `nft -j -f -`
    sysctl.py     the sysctls a node needs
    conntrack.py  deleting the conntrack entries a new hostPort DNAT must catch (UDP)

May import: runtime.sys (to enter namespaces), the standard library, pyroute2. Never nodeagent,
cni, apiclient, controlplane, nor any other part of runtime.
"""
