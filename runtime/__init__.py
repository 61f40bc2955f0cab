"""runtime — containers from kernel primitives: namespaces, mounts, cgroups, images, processes.

Place in the layer map (DEVELOPERS.md):

    nodeagent ──► runtime            runtime knows nothing of pods, networks or the API.

Layers inside, bottom up (like xv6's fs.c, each uses only the ones below it):

    sys/        every ctypes call and raw syscall, with a recording fake   (the only ctypes here)
    kernel      what the running kernel offers: namespaces, filesystems, config, modules
    cgroups/    the only code that reads or writes cgroup files (v1 and v2)
    images/     OCI images: registry client, content store, safe layer unpacking (see its __init__)

May import: the standard library, psutil, cgroupspy; runtime.images also aiohttp (its registry
client only) and zstandard (zstd layers only). Never nodeagent, network, cni, apiclient,
controlplane.
"""
