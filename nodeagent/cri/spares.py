"""Spare sandboxes: a pod's network made before the pod exists, so that RunPodSandbox does not wait
for it.

Why. Measured on the 2-core machine (bench/pod_start.py, 5 pods a second): of a pod's ~180 ms from
`kubectl create` to Running, ~50-90 ms are the sandbox's network — a new network namespace, then
CNI ADD (a veth pair, one end moved into the namespace, an address from host-local, routes, the
bridge port). None of that depends on which pod will live there. So, like the zygote's spare
workers (runtime/zygote/spares.py) and Android's pool of unspecialized app processes, the node
keeps a few network namespaces ready, each pinned and attached with CNI, and a new pod *takes*
one: what is left on its path is the pod's own part — the UTS namespace with its hostname, the
IPC namespace, the /etc files — a few milliseconds.

    make     a sandbox directory whose record says "spare": its network namespace pinned (ns/net),
             CNI ADD done with the sandbox ID as CNI_CONTAINERID, exactly as RunPodSandbox would —
             so the CNI cache, the IP's owner in host-local and the later CNI DEL are those of the
             sandbox it becomes. Undone completely on failure (Sandboxes.remove).
    take     a spare's ID, or None; the caller (Sandboxes.run) finishes it into the pod's sandbox
    refill   make spares until there are `size`; the service runs it in a worker thread after
             each RunPodSandbox. After a failure it waits 30 s before trying again (a broken
             network config must not double the work of every pod start).

Which pods may take one (`eligible`): a spare's network was set up without the pod, so only where
the pod could not have changed it — not hostNetwork, no hostPorts (portmap is given the pod's
mappings at ADD), no net.* sysctls (written inside the namespace when it is made), and only when
every plugin of the network is one of ours, which ignore the K8S_POD_* CNI_ARGS a spare is made
without (a third-party plugin may not: it gets its ADD per pod, as libcni callers expect).

Lifetimes. Spares are sandboxes on disk like any other (store.py), invisible to the kubelet side
(Sandboxes.status says None: not a pod's). `nodeagent down` removes them with every sandbox
(cleanup.py). A new service removes the spares a dead process left (service.py): the pod range
or the network config may have changed meanwhile.

Thread rule: every method may be called from any of the service's worker threads; the list of
spares is guarded by a lock, the making itself is not (different IDs, different directories).
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("nodeagent.cri.spares")

RETRY_AFTER_FAILURE = 30.0
SPARE_CNI_ARGS = (("IgnoreUnknown", "1"),)


def eligible(config, network) -> bool:
    """May a pod with this PodSandboxConfig take a spare (see the module docstring)?"""
    from cni.invoke import BUILTIN_PLUGINS

    if network is None or config.host_network:
        return False
    if any(p.host_port for p in config.port_mappings):
        return False
    if any(k.startswith("net.") for k in config.sysctls):
        return False
    try:
        net = network.network()
    except Exception:  # noqa: BLE001 - no usable config: the normal path reports the error
        return False
    for p in net.plugins:
        ipam = p.raw.get("ipam") if isinstance(p.raw.get("ipam"), dict) else {}
        if p.type not in BUILTIN_PLUGINS or (ipam and ipam.get("type") not in BUILTIN_PLUGINS):
            return False
    return True


class SparePool:
    def __init__(self, sandboxes, size: int):
        self.sandboxes = sandboxes            # the Sandboxes these spares belong to
        self.size = size
        self._lock = threading.Lock()
        self._ready: list[str] = []           # spare IDs, oldest first; guarded by _lock
        self._making = 0                      # spares being made now; guarded by _lock
        self._failed_at = 0.0                 # when making one last failed; guarded by _lock
        self.closed = False                   # the service is closing: make no more

    def take(self) -> str | None:
        with self._lock:
            return self._ready.pop(0) if self._ready else None

    def count(self) -> int:
        with self._lock:
            return len(self._ready)

    def refill(self) -> None:
        """Make spares until there are `size` (blocking: call it from a worker thread)."""
        while True:
            with self._lock:
                if self.closed or len(self._ready) + self._making >= self.size or \
                        time.monotonic() - self._failed_at < RETRY_AFTER_FAILURE:
                    return
                self._making += 1
            sid = None
            try:
                sid = self.sandboxes.make_spare()
            except Exception as e:  # noqa: BLE001 - SandboxError, CNI errors: pods go the long way
                log.warning("making a spare sandbox: %s", e)
            with self._lock:
                self._making -= 1
                if sid is None:
                    self._failed_at = time.monotonic()
                    return
                self._ready.append(sid)

    def remove_all(self) -> None:
        """Remove the spares this pool holds (blocking)."""
        with self._lock:
            ids, self._ready = self._ready, []
        for sid in ids:
            try:
                self.sandboxes.remove(sid)
            except Exception as e:  # noqa: BLE001 - cleanup() finds it later
                log.warning("removing spare sandbox %s: %s", sid, e)
