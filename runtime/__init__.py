"""runtime — containers from kernel primitives: namespaces, mounts, cgroups, images, processes.

Place in the layer map (DEVELOPERS.md):

    nodeagent ──► runtime            runtime knows nothing of pods, networks or the API.

Layers inside, bottom up (like xv6's fs.c, each uses only the ones below it; pyproject.toml's
"layers" contract checks it, siblings on one line use neither each other):

    sys/        every ctypes call and raw syscall, with a recording fake   (the only ctypes here)
    errors      the runtime's error types (one base: ContainerError)
    statefiles  files shared by a container's processes: atomic writes, removal, pid start times
    kernel      what the running kernel offers: namespaces, filesystems, config, modules
    spec/       what a container is: OCI-shaped frozen dataclasses, config.json, defaults, units
    cgroups/    the only code that reads or writes cgroup files (v1 and v2), device BPF filter
    rootfs/     the container's mount tree: overlay, mounts, /dev, pivot_root, masks
    confine/    rlimits, user, capabilities, no_new_privs, seccomp
    explain     --explain: every step with its shell equivalent
    process/    the processes: supervisor, init, exec, logs, terminals, the sealed interpreter
    container/  the verbs: create, start, state, kill, delete, exec, run
    zygote/     warm processes that create containers and serve whole CLI commands
    images/     OCI images: registry client, content store, safe layer unpacking (see its __init__)

May import: localfs, the standard library, psutil; runtime.images also aiohttp (its registry
client only) and zstandard (zstd layers only). Never nodeagent, network, cni, apiclient,
controlplane.
"""
