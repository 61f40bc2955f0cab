"""Validation: what makes an object invalid (422), with the field path of every problem.

Runs after defaulting, on the object as it would be stored. The rules are the ones users meet
first on a real cluster (pkg/apis/core/validation, pkg/apis/apps/validation): names, required
fields, enumerations, port ranges, selectors matching templates, and which fields of a pod may
change after creation. Type errors and unknown fields are caught earlier, from the OpenAPI schema
(schema.py), and answered with 400 like the real server's decoder does.
"""

from __future__ import annotations

import copy
import re

from controlplane.apiserver import meta
from controlplane.apiserver.errors import (
    FieldError, duplicate, forbidden_field, invalid, not_supported, required)
from controlplane.apiserver.selectors import selector_from_match


def metadata(kind: str, obj: dict, namespaced: bool) -> list[FieldError]:
    md = obj.get("metadata") or {}
    errs = meta.name_errors(kind, md.get("name", ""))
    if namespaced:
        errs += meta.namespace_errors(md.get("namespace", ""))
    for k, v in (md.get("labels") or {}).items():
        errs += meta.qualified_name_errors(k, "metadata.labels")
        errs += meta.label_value_errors(v, "metadata.labels")
    for k in (md.get("annotations") or {}):
        errs += meta.qualified_name_errors(k, "metadata.annotations")
    for i, ref in enumerate(md.get("ownerReferences") or []):
        for f in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(f):
                errs.append(required(f"metadata.ownerReferences[{i}].{f}"))
    if sum(1 for r in md.get("ownerReferences") or [] if r.get("controller")) > 1:
        errs.append(invalid("metadata.ownerReferences", "",
                            "Only one reference can have Controller set to true"))
    return errs


def _enum(path: str, value, allowed: list[str], errs: list[FieldError]) -> None:
    if value is not None and value not in allowed:
        errs.append(not_supported(path, value, allowed))


def _port(path: str, value, errs: list[FieldError], allow_zero: bool = False) -> None:
    if value is None:
        return
    if not isinstance(value, int) or not (0 if allow_zero else 1) <= value <= 65535:
        errs.append(invalid(path, value, "must be between 1 and 65535, inclusive"))


def _containers(spec: dict, key: str, path: str, errs: list[FieldError], need: bool) -> None:
    containers = spec.get(key)
    if not containers:
        if need:
            errs.append(required(f"{path}.{key}"))
        return
    names = set()
    for i, c in enumerate(containers):
        p = f"{path}.{key}[{i}]"
        name = c.get("name")
        if not name:
            errs.append(required(f"{p}.name"))
        else:
            errs.extend(e for e in meta.name_errors("Service", name, f"{p}.name"))  # a DNS label
            if name in names:
                errs.append(duplicate(f"{p}.name", name))
            names.add(name)
        if not c.get("image"):
            errs.append(required(f"{p}.image"))
        _enum(f"{p}.imagePullPolicy", c.get("imagePullPolicy"), ["Always", "IfNotPresent", "Never"], errs)
        for j, port in enumerate(c.get("ports") or []):
            pp = f"{p}.ports[{j}]"
            if port.get("containerPort") is None:
                errs.append(required(f"{pp}.containerPort"))
            _port(f"{pp}.containerPort", port.get("containerPort"), errs)
            _port(f"{pp}.hostPort", port.get("hostPort"), errs, allow_zero=True)
            _enum(f"{pp}.protocol", port.get("protocol"), ["SCTP", "TCP", "UDP"], errs)


# What an ephemeral (debug) container may not have: it joins a running pod and gets no
# resources, ports or probes of its own (validateEphemeralContainers).
_EPHEMERAL_FORBIDDEN = ("ports", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
                        "resources", "resizePolicy")


def _ephemeral(spec: dict, path: str, errs: list[FieldError]) -> None:
    names = {c.get("name") for key in ("containers", "initContainers")
             for c in spec.get(key) or [] if isinstance(c, dict)}
    for i, c in enumerate(spec.get("ephemeralContainers") or []):
        p = f"{path}.ephemeralContainers[{i}]"
        if not c.get("name"):
            errs.append(required(f"{p}.name"))
        elif c["name"] in names:
            errs.append(duplicate(f"{p}.name", c["name"]))
        names.add(c.get("name"))
        if not c.get("image"):
            errs.append(required(f"{p}.image"))
        for f in _EPHEMERAL_FORBIDDEN:
            if c.get(f):
                errs.append(forbidden_field(f"{p}.{f}", "cannot be set for an Ephemeral Container"))
        target = c.get("targetContainerName")
        if target and target not in {x.get("name") for x in spec.get("containers") or []}:
            errs.append(FieldError("FieldValueNotFound", f"{p}.targetContainerName", "", target, True))


def pod_spec(spec: dict | None, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(spec, dict):
        return [required(path)]
    _containers(spec, "containers", path, errs, need=True)
    _containers(spec, "initContainers", path, errs, need=False)
    _ephemeral(spec, path, errs)
    _enum(f"{path}.restartPolicy", spec.get("restartPolicy"), ["Always", "OnFailure", "Never"], errs)
    _enum(f"{path}.dnsPolicy", spec.get("dnsPolicy"),
          ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"], errs)
    g = spec.get("terminationGracePeriodSeconds")
    if isinstance(g, int) and g < 0:
        errs.append(invalid(f"{path}.terminationGracePeriodSeconds", g, "must be >= 0"))
    vols = set()
    for i, v in enumerate(spec.get("volumes") or []):
        n = v.get("name")
        if not n:
            errs.append(required(f"{path}.volumes[{i}].name"))
        elif n in vols:
            errs.append(duplicate(f"{path}.volumes[{i}].name", n))
        vols.add(n)
    return errs


def _workload(obj: dict, needs_replicas: bool) -> list[FieldError]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [required("spec")]
    errs: list[FieldError] = []
    if needs_replicas:
        r = spec.get("replicas")
        if isinstance(r, int) and r < 0:
            errs.append(invalid("spec.replicas", r, "must be greater than or equal to 0"))
    sel = spec.get("selector")
    if not sel or not (sel.get("matchLabels") or sel.get("matchExpressions")):
        errs.append(required("spec.selector"))
    tmpl = spec.get("template") or {}
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    if sel and not selector_from_match(sel).matches(labels):
        errs.append(invalid("spec.template.metadata.labels", labels,
                            "`selector` does not match template `labels`"))
    errs += pod_spec(tmpl.get("spec"), "spec.template.spec")
    if tmpl.get("spec") and kind_of(obj) in ("Deployment", "DaemonSet"):
        _enum("spec.template.spec.restartPolicy", tmpl["spec"].get("restartPolicy"), ["Always"], errs)
    return errs


def kind_of(obj: dict) -> str:
    return obj.get("kind", "")


def service(obj: dict) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errs: list[FieldError] = []
    _enum("spec.type", spec.get("type"), ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"], errs)
    ports = spec.get("ports") or []
    if not ports and spec.get("clusterIP") != "None" and spec.get("type") != "ExternalName":
        errs.append(required("spec.ports"))
    names = set()
    for i, p in enumerate(ports):
        _port(f"spec.ports[{i}].port", p.get("port"), errs)
        if p.get("port") is None:
            errs.append(required(f"spec.ports[{i}].port"))
        _enum(f"spec.ports[{i}].protocol", p.get("protocol"), ["SCTP", "TCP", "UDP"], errs)
        if len(ports) > 1 and not p.get("name"):
            errs.append(required(f"spec.ports[{i}].name"))
        if p.get("name") in names:
            errs.append(duplicate(f"spec.ports[{i}].name", p.get("name")))
        names.add(p.get("name"))
    _enum("spec.sessionAffinity", spec.get("sessionAffinity"), ["ClientIP", "None"], errs)
    if spec.get("type") in (None, "ClusterIP"):
        for i, p in enumerate(ports):
            if p.get("nodePort"):
                errs.append(forbidden_field(f"spec.ports[{i}].nodePort",
                                            "may not be used when `type` is 'ClusterIP'"))
    for i, p in enumerate(ports):
        _port(f"spec.ports[{i}].nodePort", p.get("nodePort"), errs, allow_zero=True)
    return errs


_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_MAX_DATA = 1024 * 1024  # a Secret or ConfigMap holds at most 1 MiB (etcd's request limit)


def _config_keys(obj: dict, field: str, errs: list[FieldError]) -> int:
    """Keys of data/binaryData (they become file names in volumes); returns the bytes held."""
    size = 0
    for k, v in (obj.get(field) or {}).items():
        if len(k) > 253 or not _CONFIG_KEY.match(k) or k in (".", "..") or k.startswith(".."):
            errs.append(invalid(f"{field}[{k}]", k, "a valid config key must consist of "
                                "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
                                "'KEY_NAME',  or 'key-name', regex used for validation is "
                                "'[-._a-zA-Z0-9]+')"))
        size += len(k) + len(v or "")
    return size


# Keys each well-known Secret type must carry (ValidateSecret).
_SECRET_KEYS = {"kubernetes.io/dockercfg": (".dockercfg",),
                "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
                "kubernetes.io/ssh-auth": ("ssh-privatekey",),
                "kubernetes.io/tls": ("tls.crt", "tls.key")}


def secret(obj: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    data = obj.get("data") or {}
    # Base64 takes 4 bytes per 3: the limit is on the decoded size.
    if _config_keys(obj, "data", errs) * 3 // 4 > _MAX_DATA:
        errs.append(FieldError("FieldValueTooLong", "data", f"may not be more than {_MAX_DATA} bytes"))
    t = obj.get("type")
    for key in _SECRET_KEYS.get(t, ()):
        if key not in data:
            errs.append(required(f"data[{key}]"))
    if t == "kubernetes.io/basic-auth" and "username" not in data and "password" not in data:
        errs += [required("data[username]"), required("data[password]")]
    if t == "kubernetes.io/service-account-token" and \
            not ((obj.get("metadata") or {}).get("annotations") or {}).get("kubernetes.io/service-account.name"):
        errs.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    return errs


def configmap(obj: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    size = _config_keys(obj, "data", errs) + _config_keys(obj, "binaryData", errs)
    for k in (obj.get("data") or {}):
        if k in (obj.get("binaryData") or {}):
            errs.append(invalid(f"data[{k}]", k, "duplicate of key present in binaryData"))
    if size > _MAX_DATA:
        errs.append(FieldError("FieldValueTooLong", "", f"may not be more than {_MAX_DATA} bytes"))
    return errs


def _immutable_data(old: dict, new: dict, fields: tuple[str, ...]) -> list[FieldError]:
    """`immutable: true` Secrets and ConfigMaps: their data and the flag itself are frozen."""
    if not old.get("immutable"):
        return []
    errs = []
    if not new.get("immutable"):
        errs.append(forbidden_field("immutable", "field is immutable when `immutable` is set"))
    for f in fields:
        if (old.get(f) or {}) != (new.get(f) or {}):
            errs.append(forbidden_field(f, "field is immutable when `immutable` is set"))
    return errs


def event(obj: dict) -> list[FieldError]:
    # Only legacy events (no eventTime) must name their object; new-style ones are checked by
    # the events.k8s.io rules (conversion.validate_create).
    if obj.get("involvedObject") or obj.get("eventTime"):
        return []
    return [required("involvedObject")]


def replicationcontroller(obj: dict) -> list[FieldError]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [required("spec")]
    errs: list[FieldError] = []
    r = spec.get("replicas")
    if isinstance(r, int) and r < 0:
        errs.append(invalid("spec.replicas", r, "must be greater than or equal to 0"))
    sel = spec.get("selector") or {}
    if not sel:
        errs.append(required("spec.selector"))
    tmpl = spec.get("template")
    if not isinstance(tmpl, dict):
        errs.append(required("spec.template"))
        return errs
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    if sel and any(labels.get(k) != v for k, v in sel.items()):
        errs.append(invalid("spec.template.metadata.labels", labels,
                            "selector does not match labels in template"))
    errs += pod_spec(tmpl.get("spec"), "spec.template.spec")
    _enum("spec.template.spec.restartPolicy", (tmpl.get("spec") or {}).get("restartPolicy"),
          ["Always"], errs)
    return errs


_ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]
# The volume sources a PersistentVolume may name (exactly one).
_PV_SOURCES = ("awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "csi", "fc",
               "flexVolume", "flocker", "gcePersistentDisk", "glusterfs", "hostPath", "iscsi",
               "local", "nfs", "photonPersistentDisk", "portworxVolume", "quobyte", "rbd",
               "scaleIO", "storageos", "vsphereVolume")


def _access_modes(spec: dict, errs: list[FieldError], detail: str = "") -> None:
    modes = spec.get("accessModes") or []
    if not modes:
        errs.append(required("spec.accessModes", detail))
    for m in modes:
        if m not in _ACCESS_MODES:
            errs.append(not_supported("spec.accessModes", m, _ACCESS_MODES))


def persistentvolume(obj: dict) -> list[FieldError]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    errs: list[FieldError] = []
    _access_modes(spec, errs)
    cap = spec.get("capacity") or {}
    if not cap:
        errs.append(required("spec.capacity"))
    elif "storage" not in cap or len(cap) > 1:
        errs.append(not_supported("spec.capacity", str(cap), ["storage"]))
    _enum("spec.persistentVolumeReclaimPolicy", spec.get("persistentVolumeReclaimPolicy"),
          ["Delete", "Recycle", "Retain"], errs)
    _enum("spec.volumeMode", spec.get("volumeMode"), ["Block", "Filesystem"], errs)
    sources = [s for s in _PV_SOURCES if spec.get(s) is not None]
    if not sources:
        errs.append(required("spec", "must specify a volume type"))
    elif len(sources) > 1:
        errs.append(forbidden_field(f"spec.{sources[1]}", "may not specify more than 1 volume type"))
    if spec.get("hostPath") is not None and not spec["hostPath"].get("path"):
        errs.append(required("spec.hostPath.path"))
    if spec.get("local") is not None and not spec.get("nodeAffinity"):
        errs.append(required("spec.nodeAffinity", "Local volume requires node affinity"))
    return errs


def persistentvolumeclaim(obj: dict) -> list[FieldError]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    errs: list[FieldError] = []
    _access_modes(spec, errs, "at least 1 access mode is required")
    _enum("spec.volumeMode", spec.get("volumeMode"), ["Block", "Filesystem"], errs)
    if "storage" not in ((spec.get("resources") or {}).get("requests") or {}):
        errs.append(required("spec.resources[storage]"))
    return errs


def persistentvolumeclaim_update(old: dict, new: dict) -> list[FieldError]:
    """A claim's spec is fixed once made, except a larger request (expansion) and the volume
    it binds to (set once, by the binder)."""
    o, n = dict(old.get("spec") or {}), dict(new.get("spec") or {})
    for spec in (o, n):
        spec.pop("volumeAttributesClassName", None)
        spec["resources"] = {k: v for k, v in (spec.get("resources") or {}).items() if k != "requests"}
    if not o.get("volumeName"):
        o.pop("volumeName", None)
        n.pop("volumeName", None)
    if o != n:
        return [forbidden_field("spec", "spec is immutable after creation except resources.requests "
                                "and volumeAttributesClassName for bound claims")]
    return []


# The two classes every cluster has (scheduling.SystemPriorityClasses) and the ceiling for the rest.
SYSTEM_PRIORITY_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
HIGHEST_USER_PRIORITY = 1000000000


def priorityclass(obj: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    name = (obj.get("metadata") or {}).get("name") or ""
    value = obj.get("value")
    if name.startswith("system-"):
        if name not in SYSTEM_PRIORITY_CLASSES:
            why = f"{name} is not a known system priority class"
        elif value != SYSTEM_PRIORITY_CLASSES[name]:
            why = f"value of {name} PriorityClass must be {SYSTEM_PRIORITY_CLASSES[name]}"
        elif obj.get("globalDefault"):
            why = f"globalDefault of {name} PriorityClass must be false"
        else:
            why = ""
        if why:
            errs.append(forbidden_field("metadata.name", "priority class names with 'system-' "
                                        f"prefix are reserved for system use only. error: {why}"))
    elif isinstance(value, int) and value > HIGHEST_USER_PRIORITY:
        errs.append(forbidden_field("value", f"maximum allowed value of a user defined priority "
                                    f"is {HIGHEST_USER_PRIORITY}"))
    _enum("preemptionPolicy", obj.get("preemptionPolicy"), ["Never", "PreemptLowerPriority"], errs)
    return errs


def priorityclass_update(old: dict, new: dict) -> list[FieldError]:
    errs = []
    if old.get("value") != new.get("value"):
        errs.append(forbidden_field("value", "may not be changed in an update."))
    if old.get("preemptionPolicy") != new.get("preemptionPolicy"):
        errs.append(invalid("preemptionPolicy", new.get("preemptionPolicy"), "field is immutable"))
    return errs


def podtemplate(obj: dict) -> list[FieldError]:
    return pod_spec((obj.get("template") or {}).get("spec"), "template.spec")


def _deployment(obj: dict) -> list[FieldError]:
    return _workload(obj, needs_replicas=True)


def _replicaset(obj: dict) -> list[FieldError]:
    errs = _workload(obj, needs_replicas=True)
    tmpl = (obj.get("spec") or {}).get("template") or {}
    if isinstance(tmpl.get("spec"), dict):
        _enum("spec.template.spec.restartPolicy", tmpl["spec"].get("restartPolicy"), ["Always"], errs)
    return errs


# Imported here, not at the top: validation_apps builds on pod_spec above.
from controlplane.apiserver import validation_apps as _apps  # noqa: E402

# kind → validator of the whole object (after defaulting), beyond the metadata rules.
VALIDATORS = {
    "Pod": lambda o: pod_spec(o.get("spec"), "spec"),
    "Deployment": _deployment, "ReplicaSet": _replicaset,
    "DaemonSet": lambda o: _workload(o, needs_replicas=False),
    "StatefulSet": _apps.statefulset, "ControllerRevision": _apps.controllerrevision,
    "Job": _apps.job, "CronJob": _apps.cronjob, "PodDisruptionBudget": _apps.poddisruptionbudget,
    "Service": service, "Secret": secret, "ConfigMap": configmap, "Event": event,
    "ReplicationController": replicationcontroller, "PersistentVolume": persistentvolume,
    "PersistentVolumeClaim": persistentvolumeclaim, "PriorityClass": priorityclass,
    "PodTemplate": podtemplate,
}


from controlplane.apiserver import validation_config as _config  # noqa: E402

VALIDATORS.update(_config.VALIDATORS)


def validate(kind: str, obj: dict, namespaced: bool) -> list[FieldError]:
    errs = metadata(kind, obj, namespaced)
    fn = VALIDATORS.get(kind)
    return errs + fn(obj) if fn else errs


# Fields of a pod's spec that may change after creation (ValidatePodUpdate).
_POD_MUTABLE = ("activeDeadlineSeconds", "terminationGracePeriodSeconds", "tolerations",
                "schedulingGates")


def update(kind: str, old: dict, new: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    if kind == "Pod":
        before = {c.get("name"): c for c in (old.get("spec") or {}).get("ephemeralContainers") or []}
        after = {c.get("name"): c for c in (new.get("spec") or {}).get("ephemeralContainers") or []}
        for n, c in before.items():
            if after.get(n) != c:
                errs.append(forbidden_field("spec.ephemeralContainers", f"existing ephemeral containers "
                                            f"\"{n}\" may not be removed or changed"))
        a, b = copy.deepcopy(old.get("spec") or {}), copy.deepcopy(new.get("spec") or {})
        for spec in (a, b):
            spec.pop("ephemeralContainers", None)
        for spec in (a, b):
            for key in ("containers", "initContainers"):
                for c in spec.get(key) or []:
                    c.pop("image", None)
            for f in _POD_MUTABLE:
                spec.pop(f, None)
        if a != b:
            errs.append(forbidden_field("spec", "pod updates may not change fields other than "
                                        "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                                        "`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
                                        "additions to existing tolerations),"
                                        "`spec.terminationGracePeriodSeconds` (allow it to be set "
                                        "to 1 if it was previously negative)"))
    fn = UPDATE_VALIDATORS.get(kind)
    if fn:
        errs += fn(old, new)
    if kind in ("Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "ReplicationController"):
        if (old.get("spec") or {}).get("selector") != (new.get("spec") or {}).get("selector"):
            errs.append(invalid("spec.selector", (new.get("spec") or {}).get("selector"),
                                "field is immutable"))
    if kind == "Secret":
        if old.get("type") != new.get("type"):
            errs.append(invalid("type", new.get("type"), "field is immutable"))
        errs += _immutable_data(old, new, ("data",))
    if kind == "ConfigMap":
        errs += _immutable_data(old, new, ("data", "binaryData"))
    if kind == "Service":
        o, n = (old.get("spec") or {}).get("clusterIP"), (new.get("spec") or {}).get("clusterIP")
        if o and n != o:
            errs.append(invalid("spec.clusterIP", n, "field is immutable"))
    return errs


# kind → checks of what an update may change, beyond the rules in update() itself.
UPDATE_VALIDATORS = {
    "StatefulSet": _apps.statefulset_update, "ControllerRevision": _apps.controllerrevision_update,
    "Job": _apps.job_update, "PersistentVolumeClaim": persistentvolumeclaim_update,
    "PriorityClass": priorityclass_update,
    **_config.UPDATE_VALIDATORS,
}
