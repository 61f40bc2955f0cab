"""runtime.container — the lifecycle verbs, one module each, over state directories.

    create.py   spec → "created" (supervisor + init waiting), with full rollback on failure
    start.py    start and wait
    kill.py     signal the init, or every process of the container
    delete.py   remove processes, cgroup, overlay dirs and state
    exec.py     run another process inside a running container
    state.py    the state directory and how the OCI status is derived

States (OCI runtime spec, runtime.md): creating → created → running → stopped → (deleted).

May import: everything else in runtime, the standard library.
"""

from runtime.container.create import CreateOptions, Created, create
from runtime.container.delete import delete
from runtime.container.exec import exec_process
from runtime.container.kill import kill, parse_signal
from runtime.container.start import start, wait
from runtime.container.state import DEFAULT_ROOT, DEFAULT_STORAGE, ContainerState, StateDir, list_ids


def state(root: str, cid: str) -> ContainerState:
    return StateDir(root, cid).load()


def list_containers(root: str) -> list[ContainerState]:
    out = []
    for cid in list_ids(root):
        try:
            out.append(StateDir(root, cid).load())
        except Exception:  # noqa: BLE001 - a half-removed directory is simply not listed
            continue
    return out


__all__ = ["CreateOptions", "Created", "ContainerState", "DEFAULT_ROOT", "DEFAULT_STORAGE",
           "create", "delete", "exec_process", "kill", "list_containers", "parse_signal", "start",
           "state", "wait"]
