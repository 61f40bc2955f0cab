"""network — the node's networking primitives: netlink (pyroute2), nftables (`nft -j`), sysctls.

Place in the layer map (DEVELOPERS.md):

    cni ──► network ──► runtime.sys        network knows nothing of pods, CNI or the API.

Operations here are idempotent and report what they changed, so the CNI plugins and
`nodeagent net --explain` can show a student exactly what happened to the kernel.

May import: runtime.sys (to enter namespaces), the standard library, pyroute2. Never nodeagent,
cni, apiclient, controlplane, nor any other part of runtime.
"""
