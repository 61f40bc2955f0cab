"""The Node object: registration, status and the heartbeat Lease (kubelet_node_status.go,
nodestatus/setters.go, nodelease/).

A node tells the cluster two things, at two speeds:

    Node status   what it is and how it is: addresses, capacity and allocatable, nodeInfo
                  (kernel, OS, runtime, kubelet versions), the kubelet endpoint's port, and the
                  conditions Ready / MemoryPressure / DiskPressure / PIDPressure. Written when it
                  changes and at least every 10 s here (nodeStatusUpdateFrequency).
    Lease         kube-node-lease/<node>: "I am alive", renewed every 10 s. It is tiny, so the
                  heartbeat does not rewrite the whole Node; the node lifecycle controller marks a
                  node whose Lease stops moving as NotReady / Unknown.

Capacity is what the machine has; allocatable is capacity minus what the node keeps for itself —
here the hard eviction thresholds on memory.available and nodefs.available (100Mi and 10% by
default), since pods that use those up would be evicted anyway. `pods` is 110, the kubelet's
default.

The three pressure conditions are the eviction manager's (eviction/): a threshold met sets its
condition, which stays True for the pressure transition period after the signal recovers.

Conditions are written with the kubelet's own reasons and messages (KubeletReady "kubelet is
posting ready status", KubeletHasSufficientMemory, ...), and a condition's lastTransitionTime only
moves when its status changes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Awaitable, Callable

from apiclient import LEASES, NODES, AlreadyExists, ApiClient, ApiError, Conflict, NotFound

log = logging.getLogger("nodeagent.nodestatus")

STATUS_EVERY = 10.0
LEASE_EVERY = 10.0
LEASE_DURATION = 40
LEASE_NAMESPACE = "kube-node-lease"
MAX_PODS = 110
KUBELET_PORT = 10250
KUBELET_VERSION = "v1.37.0-nodeagent"
EVICTION_MEMORY = 100 * 2**20          # memory.available<100Mi (without an eviction manager)
EVICTION_NODEFS = 0.10                 # nodefs.available<10%
PID_RESERVE = 0.05                     # pid pressure when fewer than 5% of pid_max are free


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """metav1.MicroTime, what a Lease's renewTime holds."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"


ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
        "s390x": "s390x", "riscv64": "riscv64"}


@dataclass(frozen=True)
class NodeIdentity:
    name: str
    ip: str
    data_dir: str                          # whose filesystem is the node's ephemeral storage
    pod_cidr: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Machine:
    """Capacity, measured once (psutil), and what hard eviction thresholds keep back from pods."""
    cpus: int
    memory: int
    disk: int
    reserved_memory: int = EVICTION_MEMORY
    reserved_disk: int | None = None       # None: EVICTION_NODEFS of the disk

    @classmethod
    def measure(cls, data_dir: str, eviction=None) -> "Machine":
        """`eviction`: an eviction.EvictionConfig, whose hard memory.available and
        nodefs.available thresholds are kept out of allocatable (cm's hardEvictionReservation)."""
        import psutil
        os.makedirs(data_dir, exist_ok=True)
        memory, disk = psutil.virtual_memory().total, psutil.disk_usage(data_dir).total
        if eviction is None:
            return cls(os.cpu_count() or 1, memory, disk)
        from nodeagent.eviction import hard_reservation
        return cls(os.cpu_count() or 1, memory, disk,
                   hard_reservation(eviction, "memory", "memory.available", memory),
                   hard_reservation(eviction, "ephemeral-storage", "nodefs.available", disk))

    @property
    def _kept_disk(self) -> int:
        return int(self.disk * EVICTION_NODEFS) if self.reserved_disk is None else self.reserved_disk

    def capacity(self) -> dict[str, str]:
        return {"cpu": str(self.cpus), "memory": f"{self.memory // 1024}Ki", "pods": str(MAX_PODS),
                "ephemeral-storage": f"{self.disk // 1024}Ki", "hugepages-2Mi": "0",
                "hugepages-1Gi": "0"}

    def allocatable(self) -> dict[str, str]:
        n = self.allocatable_numbers()
        return {**self.capacity(), "memory": f"{n['memory'] // 1024}Ki",
                "ephemeral-storage": str(n["ephemeral-storage"])}

    def allocatable_numbers(self) -> dict[str, int]:
        return {"cpu": self.cpus * 1000, "memory": max(0, self.memory - self.reserved_memory),
                "ephemeral-storage": max(0, self.disk - self._kept_disk)}


def pressure(data_dir: str) -> dict[str, bool]:
    import psutil
    mem = psutil.virtual_memory().available < EVICTION_MEMORY
    du = psutil.disk_usage(data_dir)
    disk = du.free < du.total * EVICTION_NODEFS
    try:
        pid_max = int(_read("/proc/sys/kernel/pid_max") or 4194304)
        pids = len(psutil.pids()) < pid_max * (1 - PID_RESERVE)
    except ValueError:
        pids = True
    return {"MemoryPressure": mem, "DiskPressure": disk, "PIDPressure": not pids}


# reason and message for each condition, by status (the kubelet's setters.go)
_CONDITION_TEXT = {
    ("MemoryPressure", False): ("KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("MemoryPressure", True): ("KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
    ("DiskPressure", False): ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("DiskPressure", True): ("KubeletHasDiskPressure", "kubelet has disk pressure"),
    ("PIDPressure", False): ("KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("PIDPressure", True): ("KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
}


class NodeStatus:
    """Registers the Node, then keeps its status and Lease current (two loops)."""

    def __init__(self, api: ApiClient, ident: NodeIdentity, machine: Machine,
                 runtime_version: Callable[[], Awaitable[tuple[str, str]]],
                 runtime_ready: Callable[[], str | None], recorder=None):
        self.api, self.ident, self.machine = api, ident, machine
        self.recorder = recorder                # events.EventRecorder, or None
        self.runtime_version = runtime_version
        self.runtime_ready = runtime_ready     # None when ready, else why not (the Ready message)
        self.node_uid = ""
        self.eviction = None                    # eviction.EvictionManager: the pressure conditions
        self._changed = asyncio.Event()
        self.writes = 0

    def changed(self) -> None:
        """Something in the status may have changed: write it now instead of at the next tick."""
        self._changed.set()

    # --- registration -------------------------------------------------------------------------------
    def _labels(self) -> dict[str, str]:
        arch = ARCH.get(platform.machine(), platform.machine())
        return {"kubernetes.io/hostname": self.ident.name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": arch, "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": arch, **self.ident.labels}

    async def initial_node(self) -> dict:
        """The Node as first POSTed (the kubelet's initialNode): labels, annotations, spec — and the
        whole status already filled by the same setters as every later update (setNodeStatus), so
        the first object anyone sees (a scheduler's or a `kubectl get nodes -w`'s ADDED event) has
        capacity, allocatable, addresses, nodeInfo and conditions, never a bare Node. (The API
        server keeps a Node's status on create: its PrepareForCreate does not reset it.)"""
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.ident.name, "labels": self._labels(),
                             "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                             "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
                "spec": {"podCIDR": self.ident.pod_cidr, "podCIDRs": [self.ident.pod_cidr]}
                if self.ident.pod_cidr else {},
                "status": await self._status({})}

    async def register(self) -> dict:
        """POST the Node with its status; if it exists (a restart, or a re-join), reconcile our
        labels onto it — the status loop then brings its status up to date."""
        # first, as the kubelet's own start says it: before the conditions' events that
        # building the status records (kubectl get events lists them in that order)
        self._event("Normal", "Starting", "Starting kubelet.")
        body = await self.initial_node()
        while True:
            try:
                node = await self.api.create(NODES, body)
                self.writes += 1
                break
            except AlreadyExists:
                def mutate(n: dict) -> dict | None:
                    labels = n["metadata"].setdefault("labels", {})
                    want = self._labels()
                    spec = n.setdefault("spec", {})
                    if all(labels.get(k) == v for k, v in want.items()) and \
                            (spec.get("podCIDR") or not self.ident.pod_cidr):
                        return None
                    labels.update(want)
                    if self.ident.pod_cidr and not spec.get("podCIDR"):
                        spec["podCIDR"], spec["podCIDRs"] = self.ident.pod_cidr, [self.ident.pod_cidr]
                    return n
                node = await self.api.update_with_retry(NODES, self.ident.name, mutate)
                break
            except ApiError as e:
                log.warning("registering node %s: %s; retrying", self.ident.name, e)
                await asyncio.sleep(1)
        self.node_uid = node["metadata"]["uid"]
        log.info("registered node %s", self.ident.name)
        return node

    def event(self, type_: str, reason: str, message: str) -> None:
        """An event about the Node (image GC's FreeDiskSpaceFailed, ...)."""
        self._event(type_, reason, message)

    def _event(self, type_: str, reason: str, message: str) -> None:
        # The kubelet's node events name the node by its name, also as the UID.
        if self.recorder is not None:
            self.recorder.event({"kind": "Node", "apiVersion": "v1",
                                 "metadata": {"name": self.ident.name, "uid": self.ident.name}},
                                type_, reason, message)

    # --- status -------------------------------------------------------------------------------------
    async def _status(self, old: dict) -> dict:
        name, version = await self.runtime_version()
        hostname = socket.gethostname()
        before = {c.get("type"): c for c in (old.get("conditions") or [])}
        now = now_rfc3339()
        conds = []
        flags = await asyncio.to_thread(pressure, self.ident.data_dir)
        if self.eviction is not None:          # the eviction manager's thresholds decide these
            for cond in ("MemoryPressure", "DiskPressure", "PIDPressure"):
                flags[cond] = self.eviction.under(cond)
        for type_, on in flags.items():
            reason, message = _CONDITION_TEXT[(type_, on)]
            conds.append(self._cond(before, type_, on, reason, message, now))
        not_ready = self.runtime_ready()
        conds.append(self._cond(before, "Ready", not_ready is None,
                                "KubeletReady" if not_ready is None else "KubeletNotReady",
                                "kubelet is posting ready status" if not_ready is None else not_ready,
                                now))
        return {
            "capacity": self.machine.capacity(), "allocatable": self.machine.allocatable(),
            "conditions": conds,
            "addresses": [{"type": "InternalIP", "address": self.ident.ip},
                          {"type": "Hostname", "address": hostname}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
            "nodeInfo": {
                "machineID": _read("/etc/machine-id"), "systemUUID": _read("/sys/class/dmi/id/product_uuid")
                or _read("/etc/machine-id"), "bootID": _read("/proc/sys/kernel/random/boot_id"),
                "kernelVersion": platform.release(), "osImage": os_image(),
                "containerRuntimeVersion": f"{name}://{version}", "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "", "operatingSystem": "linux",
                "architecture": ARCH.get(platform.machine(), platform.machine())},
        }

    def _cond(self, before: dict, type_: str, on: bool, reason: str, message: str, now: str) -> dict:
        status = "True" if on else "False"
        prev = before.get(type_) or {}
        moved = prev.get("status") != status
        if moved:   # "Node n1 status is now: NodeHasSufficientMemory" (kubelet's recordNodeStatusEvent)
            word = {"KubeletReady": "NodeReady", "KubeletNotReady": "NodeNotReady"}.get(
                reason, reason.replace("Kubelet", "Node", 1))
            self._event("Normal", word, f"Node {self.ident.name} status is now: {word}")
        return {"type": type_, "status": status, "lastHeartbeatTime": now,
                "lastTransitionTime": now if moved or not prev.get("lastTransitionTime")
                else prev["lastTransitionTime"], "reason": reason, "message": message}

    async def update_status(self) -> None:
        node = await self.api.get(NODES, self.ident.name)
        for _ in range(5):
            node["status"] = {**(node.get("status") or {}), **await self._status(node.get("status") or {})}
            try:
                await self.api.update_status(NODES, node)
                self.writes += 1
                return
            except Conflict:
                node = await self.api.get(NODES, self.ident.name)

    async def run_status(self) -> None:
        while True:
            try:
                await self.update_status()
            except NotFound:
                await self.register()          # someone deleted our Node: register again
                continue
            except ApiError as e:
                log.warning("node status: %s", e)
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), STATUS_EVERY)
            except asyncio.TimeoutError:
                pass

    # --- the Lease ----------------------------------------------------------------------------------
    async def renew_lease(self) -> None:
        spec = {"holderIdentity": self.ident.name, "leaseDurationSeconds": LEASE_DURATION,
                "renewTime": now_micro()}
        try:
            lease = await self.api.get(LEASES, self.ident.name, LEASE_NAMESPACE)
        except NotFound:
            owner = [{"apiVersion": "v1", "kind": "Node", "name": self.ident.name,
                      "uid": self.node_uid}] if self.node_uid else []
            await self.api.create(LEASES, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.ident.name, "namespace": LEASE_NAMESPACE,
                             "ownerReferences": owner}, "spec": spec}, LEASE_NAMESPACE)
            return
        lease["spec"] = {**(lease.get("spec") or {}), **spec}
        await self.api.update(LEASES, lease, LEASE_NAMESPACE)

    async def run_lease(self) -> None:
        while True:
            try:
                await self.renew_lease()
            except ApiError as e:
                log.warning("node lease: %s", e)
            await asyncio.sleep(LEASE_EVERY)
