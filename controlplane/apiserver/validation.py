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


def pod_spec(spec: dict | None, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(spec, dict):
        return [required(path)]
    _containers(spec, "containers", path, errs, need=True)
    _containers(spec, "initContainers", path, errs, need=False)
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


def validate(kind: str, obj: dict, namespaced: bool) -> list[FieldError]:
    errs = metadata(kind, obj, namespaced)
    if kind == "Pod":
        errs += pod_spec(obj.get("spec"), "spec")
    elif kind in ("Deployment", "ReplicaSet"):
        errs += _workload(obj, needs_replicas=True)
    elif kind == "DaemonSet":
        errs += _workload(obj, needs_replicas=False)
    elif kind == "Service":
        errs += service(obj)
    elif kind == "Secret":
        errs += secret(obj)
    elif kind == "ConfigMap":
        errs += configmap(obj)
    elif kind == "Event":
        if not obj.get("involvedObject"):
            errs.append(required("involvedObject"))
    return errs


# Fields of a pod's spec that may change after creation (ValidatePodUpdate).
_POD_MUTABLE = ("activeDeadlineSeconds", "terminationGracePeriodSeconds", "tolerations",
                "schedulingGates")


def update(kind: str, old: dict, new: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    if kind == "Pod":
        a, b = copy.deepcopy(old.get("spec") or {}), copy.deepcopy(new.get("spec") or {})
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
    if kind in ("Deployment", "ReplicaSet", "DaemonSet"):
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
