"""runtime.spec — what a container is, as data: OCI-shaped frozen dataclasses and their edges.

    model.py            the dataclasses (ContainerSpec, Process, Root, Mount, Linux, Resources, ...)
    bundle.py           config.json ⇄ ContainerSpec, with errors that name the field
    defaults.py         the defaults of an unprivileged container (caps, mounts, masks, devices)
    runtime_default.py  the RuntimeDefault seccomp profile
    units.py            Kubernetes quantities (64Mi, 500m) → cgroup numbers, and why
    limits.py           which resource limits the kernel can take (checked before any cgroup)
    names.py            which hostnames the UTS namespace gets
    image_config.py     an image's Entrypoint/Cmd/Env/WorkingDir/User → the process

User and group IDs are checked wherever they enter (model.py: MAX_ID says why -1 is root).

May import: runtime.sys (constants), runtime.errors, the standard library.
"""

from runtime.spec.model import ContainerSpec

__all__ = ["ContainerSpec"]
