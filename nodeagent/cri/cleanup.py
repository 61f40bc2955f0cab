"""Remove everything the runtime side made under a state dir — for `nodeagent down` (through
nodeagent.node.clean_node) and for tests.

    cleanup(state_dir, cni=PodNetworkConfig(...))

In order: the runtime's zygote (so that nothing new is created meanwhile), every container (its
processes through its cgroup, the cgroup, the overlay, the runtime's state — including containers
the runtime has but no CRI record names, left by a crash between the two), then every sandbox (CNI
DEL: the veth, the IP, the hostPort rules; the pinned namespaces; a pod cgroup of ours), then the
shared mount of the sandboxes' directory, and the directories themselves. The image store is
kept (images are expensive to get again; remove it separately if wanted). Safe to call on a
state dir that is partly or entirely gone; safe to call twice. Returns the problems it could not
fix, as lines (empty: all clean).

Blocking; call it with no RuntimeService of the same state dir in use.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def cleanup(state_dir: str | os.PathLike, *, cni=None) -> list[str]:
    from runtime.container.delete import delete
    from runtime.container.state import list_ids
    from runtime.errors import ContainerError

    from nodeagent.cri import zygote
    from nodeagent.cri.api import CRIError
    from nodeagent.cri.sandbox import Sandboxes
    from nodeagent.cri.store import Store

    store = Store(state_dir)
    problems: list[str] = []
    if not store.root.exists():
        return problems
    root = str(store.runtime_root)
    # The zygote first: requests still queued on its socket (from an agent killed mid-burst) would
    # otherwise create containers after the pass below has listed them.
    zygote.stop(root)
    for cid in list_ids(root):
        try:
            delete(root, cid, force=True)
        except ContainerError as e:
            problems.append(f"container {cid}: {e}")
    for cid in store.container_ids():
        store.drop_container(cid)
    network = None
    if cni is not None:
        from cni.podnet import PodNetwork, PodNetworkConfig
        network = PodNetwork(cni) if isinstance(cni, PodNetworkConfig) else cni
    sandboxes = Sandboxes(store, network)
    try:
        for sid in store.sandbox_ids():
            try:
                sandboxes.remove(sid)
            except CRIError as e:
                problems.append(f"sandbox {sid}: {e.message}")
    finally:
        if network is not None and network is not cni:
            network.close()
    _rmdir_default_parent()
    _unmount(store.sandboxes)
    for d in (store.root / "cri", store.runtime_root, store.storage):
        shutil.rmtree(d, ignore_errors=True)
        if d.exists():
            problems.append(f"{d} could not be removed")
    return problems


def pod_uids(state_dir: str | os.PathLike) -> set[str]:
    """The pods whose sandboxes or containers are under state_dir (PodSandboxMetadata.uid, and
    the pod-uid label of containers whose sandbox record is gone): which pods a node made, read
    before `cleanup` removes the records."""
    from nodeagent.cri.store import Store

    store = Store(state_dir)
    out: set[str] = set()
    if not store.root.exists():
        return out
    for sid in store.sandbox_ids():
        uid = (((store.sandbox(sid) or {}).get("config") or {}).get("metadata") or {}).get("uid")
        if uid:
            out.add(uid)
    for cid in store.container_ids():
        uid = ((store.container(cid) or {}).get("labels") or {}).get("io.kubernetes.pod.uid")
        if uid:
            out.add(uid)
    return out


def _rmdir_default_parent() -> None:
    """The pod cgroups' common parent, if nothing else (another node in the same cgroup) uses it."""
    from nodeagent.cri import cgroups

    for d in cgroups.dirs(cgroups.DEFAULT_PARENT):
        try:
            os.rmdir(d)
        except OSError:
            pass


def _unmount(directory: Path) -> None:
    """Undo service._prepare_pins_dir: the directory's bind mount of itself (maybe stacked, if
    two services prepared it)."""
    from runtime.sys import real
    from runtime.sys.consts import MNT_DETACH

    target = str(directory.resolve()) if directory.exists() else str(directory)
    sys_ = real()
    for _ in range(8):
        with open("/proc/self/mountinfo") as f:
            mounted = any(line.split()[4] == target for line in f)
        if not mounted:
            return
        try:
            sys_.umount2(target, MNT_DETACH)
        except OSError:
            return
