"""cni — our CNI plugins (bridge, host-local IPAM, loopback, portmap) and the CNI executor.

Place in the layer map (DEVELOPERS.md):

    nodeagent ──► cni ──► network ──► runtime.sys

The plugins follow the CNI specification exactly, so they can be swapped for the reference plugins
and the reference plugins for them; the executor runs any spec-conformant plugin chain, as libcni does.

May import: network, runtime.sys, the standard library. Never nodeagent, apiclient, controlplane.
"""
