"""cni — our CNI plugins (bridge, host-local IPAM, loopback, portmap) and the CNI executor.

Place in the layer map (DEVELOPERS.md):

    nodeagent ──► cni ──► network ──► runtime.sys

The plugins follow the CNI specification exactly, so they can be swapped for the reference plugins
and the reference plugins for them; the executor runs any spec-conformant plugin chain, as libcni does.

The protocol                          The runtime side (what the agent uses)
    version.py  spec versions             config.py    conf dir discovery, request configs
    errors.py   the spec's error codes    invoke.py    running a plugin: exec, or in-process
    result.py   the ADD result            cache.py     the result cache (libcni's format)
    skel.py     a plugin's main loop      executor.py  ADD/DEL/CHECK/GC/STATUS over a chain
                                          podnet.py    PodNetwork: setup/teardown a pod (the agent's API)
The plugins (plugins/), IPAM (ipam/)      podview.py   a pod's network read back from the kernel
                                          install.py   launchers in /opt/cni/bin, the default conflist

May import: network, runtime.sys, localfs, the standard library. Never nodeagent, apiclient, controlplane.
"""
