"""Registry strategies: what differs between kinds when objects are created, updated and deleted.

The generic registry (objects.py) does what every kind shares — names, uids, resourceVersions,
compare-and-swap, finalizers — and asks the kind's Strategy for the rest, as kube-apiserver's
genericregistry.Store asks pkg/registry/<group>/<kind>/strategy.go:

    canonicalize        conversion from the wire form (a Secret's stringData → data)
    prepare_for_create  the status a new object starts with, fields the server derives
    prepare_for_update  what an update may not change by itself (status kept when /status is a
                        separate subresource; values allocated earlier)
    generation_changed  whether `metadata.generation` moves (spec changes, by default)
    default, admit, validate, validate_update
                        defaults.py, admission.py, validation.py for this kind
    allocate            values taken from a shared pool (a Service's ClusterIP and nodePorts)
    check_delete        a delete that must be refused (the system PriorityClasses)
    grace_period        how long a delete waits for someone to confirm it (pods on a node)

One Strategy instance per kind, built from the resource table; kinds with their own rules
subclass it. Everything here works on plain dicts and changes them in place.
"""

from __future__ import annotations

import base64
import copy

from controlplane.apiserver import (
    admission, allocator, defaults, meta, serviceaccounts, validation)
from controlplane.apiserver.errors import FieldError
from controlplane.apiserver.resources import RESOURCES, ResourceType
from controlplane.storage.watchcache import WatchCache

# The status each kind starts with: upstream's PrepareForCreate resets it to the zero value,
# which Go encodes with the fields that have no omitempty.
_INITIAL_STATUS: dict[str, dict] = {
    "Service": {"loadBalancer": {}}, "Deployment": {}, "ReplicaSet": {"replicas": 0},
    "DaemonSet": {"currentNumberScheduled": 0, "desiredNumberScheduled": 0,
                  "numberMisscheduled": 0, "numberReady": 0},
    "StatefulSet": {"availableReplicas": 0, "replicas": 0}, "ReplicationController": {"replicas": 0},
    "Job": {}, "CronJob": {}, "ResourceQuota": {}, "PersistentVolume": {"phase": "Pending"},
    "PersistentVolumeClaim": {"phase": "Pending"},
    "PodDisruptionBudget": {"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0,
                            "expectedPods": 0},
    "Ingress": {"loadBalancer": {}}, "HorizontalPodAutoscaler": {"desiredReplicas": 0},
    "VolumeAttachment": {"attached": False}, "ValidatingAdmissionPolicy": {},
}


class Strategy:
    def __init__(self, rt: ResourceType):
        self.rt = rt
        self.kind = rt.kind
        # /status is a separate subresource: writes to the object itself keep the old status.
        self.status_split = "status" in rt.subresources

    def canonicalize(self, obj: dict) -> None:
        pass

    def prepare_for_create(self, obj: dict) -> None:
        status = _INITIAL_STATUS.get(self.kind)
        if status is not None:
            obj["status"] = copy.deepcopy(status)

    def prepare_for_update(self, new: dict, old: dict) -> None:
        pass

    def generation_changed(self, new: dict, old: dict) -> bool:
        return self.rt.has_spec and new.get("spec") != old.get("spec")

    def default(self, obj: dict) -> None:
        defaults.apply(self.kind, obj)

    def admit(self, obj: dict, old: dict | None, cache: WatchCache) -> None:
        pass

    def validate(self, obj: dict) -> list[FieldError]:
        return validation.validate(self.kind, obj, self.rt.namespaced)

    def validate_update(self, new: dict, old: dict) -> list[FieldError]:
        return validation.update(self.kind, old, new)

    def allocate(self, obj: dict, old: dict | None, pool, claimed: set,
                 key: str | None = None) -> list[FieldError]:
        return []

    def check_delete(self, obj: dict) -> None:
        pass

    def grace_period(self, obj: dict, opts) -> int:
        return 0  # nothing has to confirm the deletion of most objects


class PodStrategy(Strategy):
    def prepare_for_update(self, new: dict, old: dict) -> None:
        """Ephemeral containers change only through pods/<p>/ephemeralcontainers."""
        if isinstance(new.get("spec"), dict):
            ephemeral = (old.get("spec") or {}).get("ephemeralContainers")
            if ephemeral:
                new["spec"]["ephemeralContainers"] = copy.deepcopy(ephemeral)
            else:
                new["spec"].pop("ephemeralContainers", None)

    def prepare_for_create(self, obj: dict) -> None:
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}

    def admit(self, obj: dict, old: dict | None, cache: WatchCache) -> None:
        if old is None:
            serviceaccounts.admit_pod(obj, cache)
            admission.pod_priority(obj, cache)

    def grace_period(self, obj: dict, opts) -> int:
        """A pod that may be running waits for its node agent to stop it and confirm with a
        delete of grace 0; one that nothing runs goes at once (CheckGracefulDelete)."""
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        if opts.grace_period is not None:
            return 1 if opts.grace_period < 0 else opts.grace_period  # rest.BeforeDelete: <0 means 1
        g = spec.get("terminationGracePeriodSeconds")
        return 30 if g is None else max(0, g)


class DeploymentStrategy(Strategy):
    def generation_changed(self, new: dict, old: dict) -> bool:
        # Deployments copy their annotations to their ReplicaSets, so an annotation change is a
        # new generation too.
        return super().generation_changed(new, old) or \
            (new["metadata"].get("annotations") != old["metadata"].get("annotations"))


class JobStrategy(Strategy):
    def prepare_for_create(self, obj: dict) -> None:
        super().prepare_for_create(obj)
        job_selector(obj)


class PersistentVolumeStrategy(Strategy):
    def prepare_for_create(self, obj: dict) -> None:
        super().prepare_for_create(obj)
        obj["status"]["lastPhaseTransitionTime"] = meta.now()


class SecretStrategy(Strategy):
    def canonicalize(self, obj: dict) -> None:
        """`stringData` is a write-only convenience: its values are merged into `data` (base64),
        winning over keys of the same name, and never stored (Convert_v1_Secret_To_core_Secret)."""
        if "stringData" in obj:
            string_data = obj.pop("stringData") or {}
            if string_data:
                data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
                for k, v in string_data.items():
                    data[k] = base64.b64encode(str(v).encode()).decode()
                obj["data"] = data


class ServiceStrategy(Strategy):
    def prepare_for_update(self, new: dict, old: dict) -> None:
        allocator.keep_allocated(old, new)

    def allocate(self, obj: dict, old: dict | None, pool, claimed: set,
                 key: str | None = None) -> list[FieldError]:
        return allocator.allocate(obj, pool.cache, pool.service_net, pool.node_ports,
                                  pool.reserved, claimed, old, key)


class PriorityClassStrategy(Strategy):
    def admit(self, obj: dict, old: dict | None, cache: WatchCache) -> None:
        admission.priority_class_write(obj, cache)

    def check_delete(self, obj: dict) -> None:
        admission.priority_class_delete(obj["metadata"]["name"])


_SPECIAL = {"Pod": PodStrategy, "Deployment": DeploymentStrategy, "Job": JobStrategy,
            "PersistentVolume": PersistentVolumeStrategy, "Secret": SecretStrategy,
            "Service": ServiceStrategy, "PriorityClass": PriorityClassStrategy}

STRATEGIES: dict[str, Strategy] = {r.kind: _SPECIAL.get(r.kind, Strategy)(r) for r in RESOURCES
                                   if not r.storage_plural}  # views use their storage kind


def for_kind(rt: ResourceType) -> Strategy:
    if rt.custom is not None:  # a custom resource: its CRD decides (apiextensions/custom.py)
        return rt.custom.strategy
    return STRATEGIES.get(rt.kind) or Strategy(rt)


def qos_class(spec: dict) -> str:
    """BestEffort (no requests or limits), Guaranteed (cpu and memory limits equal to requests in
    every container) or Burstable (anything between)."""
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    any_set, guaranteed = False, True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or str(req.get(r, lim[r])) != str(lim[r]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def job_selector(job: dict) -> None:
    """A Job selects its pods by its own uid unless the user takes over (manualSelector): the
    template gets job-name and controller-uid labels (new and legacy spellings) and the selector
    matches the uid (upstream's generateSelector)."""
    spec = job.get("spec")
    if not isinstance(spec, dict) or spec.get("manualSelector"):
        return
    tmpl = spec.get("template")
    if not isinstance(tmpl, dict):
        return
    md = tmpl.setdefault("metadata", {}) if tmpl.get("metadata") is None else tmpl["metadata"]
    labels = md.setdefault("labels", {}) if md.get("labels") is None else md["labels"]
    name, uid = job["metadata"].get("name", ""), job["metadata"]["uid"]
    for key in ("job-name", "batch.kubernetes.io/job-name"):
        labels.setdefault(key, name)
    for key in ("controller-uid", "batch.kubernetes.io/controller-uid"):
        labels.setdefault(key, uid)
    sel = spec.setdefault("selector", {}) if spec.get("selector") is None else spec["selector"]
    if isinstance(sel, dict):
        match = sel.setdefault("matchLabels", {}) if sel.get("matchLabels") is None else sel["matchLabels"]
        match.setdefault("batch.kubernetes.io/controller-uid", uid)
