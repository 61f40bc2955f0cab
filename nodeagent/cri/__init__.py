"""nodeagent.cri — the kubelet/runtime boundary (api.py, shaped like Kubernetes' CRI) and its
implementation over our own runtime, networking and image store.

    api.py        the data and the two services (RuntimeService, ImageService): read this first
    service.py    open_runtime(state_dir, cni=...) → (RuntimeService, ImageService): the asyncio face
    sandbox.py    pod sandboxes: pinned net/ipc/uts namespaces, CNI, /etc/hosts and friends
    nshelper.py   the fresh process that makes (pins) namespaces or connects inside one
    containers.py containers over the runtime: create, start, stop, remove, status
    spec.py       ContainerConfig + image + sandbox → the OCI spec (pure: command/args, env, user,
                  resources, namespaces, mounts)
    zygote.py     containers are created by the runtime's zygote, never by the threaded agent
    events.py     container events from supervisors' pidfds (no polling)
    streams.py    exec, exec_sync, attach, port-forward as file descriptors
    images.py     the ImageService over runtime.images
    cgroups.py    the pod-level cgroup path, and usage for stats
    store.py      what is on disk under the state dir, and who writes it
    cleanup.py    cleanup(state_dir): remove everything the runtime side made (`nodeagent down`)

The two entry points for the rest of the agent: `open_runtime` and `cleanup` (below).

May import: runtime, cni, network (through their public faces), the standard library. Never
apiclient: the runtime side of a node does not talk to the API server — the kubelet side does.
"""


def open_runtime(state_dir, **kw):
    """See nodeagent.cri.service.open_runtime."""
    from nodeagent.cri.service import open_runtime as _open

    return _open(state_dir, **kw)


def cleanup(state_dir, **kw) -> list[str]:
    """See nodeagent.cri.cleanup.cleanup."""
    from nodeagent.cri.cleanup import cleanup as _cleanup

    return _cleanup(state_dir, **kw)
