"""Validation of the kinds that configure a cluster rather than run work: networking.k8s.io
(Ingress, IngressClass, NetworkPolicy), storage.k8s.io (StorageClass, CSIDriver, CSINode,
VolumeAttachment), rbac.authorization.k8s.io, autoscaling (HorizontalPodAutoscaler),
admissionregistration.k8s.io and node.k8s.io (RuntimeClass).

Their controllers and enforcement arrive with the work that needs them; until then the API
server stores them as a real cluster would accept them — the rules and words below are
upstream's (pkg/apis/<group>/validation) for the fields users get wrong first.
"""

from __future__ import annotations

import re

from controlplane.apiserver.errors import (
    FieldError, duplicate, forbidden_field, invalid, not_supported, required)

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _enum(path: str, value, allowed: list[str], errs: list[FieldError]) -> None:
    if value is not None and value not in allowed:
        errs.append(not_supported(path, value, allowed))


def _immutable(old: dict, new: dict, fields: tuple[str, ...], word: str = "") -> list[FieldError]:
    errs = []
    for f in fields:
        if old.get(f) != new.get(f):
            errs.append(forbidden_field(f, f"updates to {f} are forbidden.") if word == "forbidden"
                        else invalid(f, new.get(f), "field is immutable"))
    return errs


# ---- networking.k8s.io ----

def _backend(b: dict, path: str, errs: list[FieldError]) -> None:
    svc, res = b.get("service"), b.get("resource")
    if svc and res:
        errs.append(invalid(path, "", "cannot set both resource and service backends"))
    elif not svc and not res:
        errs.append(invalid(path, "", "resource or service backend is required"))
    elif svc:
        if not svc.get("name"):
            errs.append(required(f"{path}.service.name"))
        port = svc.get("port") or {}
        if port.get("name") and port.get("number"):
            errs.append(invalid(f"{path}.service.port", "", "cannot set both port name & port number"))
        elif not port.get("name") and not port.get("number"):
            errs.append(required(f"{path}.service.port", "port name or number is required"))


def ingress(obj: dict) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errs: list[FieldError] = []
    if spec.get("defaultBackend"):
        _backend(spec["defaultBackend"], "spec.defaultBackend", errs)
    if not spec.get("defaultBackend") and not spec.get("rules"):
        errs.append(invalid("spec", "", "either `defaultBackend` or `rules` must be specified"))
    for i, rule in enumerate(spec.get("rules") or []):
        host = rule.get("host")
        if host:
            bare = host[2:] if host.startswith("*.") else host
            if not _DNS1123_SUBDOMAIN.match(bare):
                errs.append(invalid(f"spec.rules[{i}].host", host, "a lowercase RFC 1123 subdomain "
                                    "must consist of lower case alphanumeric characters, '-' or '.'"))
        for j, p in enumerate((rule.get("http") or {}).get("paths") or []):
            pp = f"spec.rules[{i}].http.paths[{j}]"
            t = p.get("pathType")
            if t is None:
                errs.append(required(f"{pp}.pathType", "pathType must be specified"))
            else:
                _enum(f"{pp}.pathType", t, ["Exact", "ImplementationSpecific", "Prefix"], errs)
            if t in ("Exact", "Prefix") and not str(p.get("path", "")).startswith("/"):
                errs.append(invalid(f"{pp}.path", p.get("path", ""), "must be an absolute path"))
            _backend(p.get("backend") or {}, f"{pp}.backend", errs)
    return errs


def ingressclass(obj: dict) -> list[FieldError]:
    ctl = (obj.get("spec") or {}).get("controller")
    if not ctl:
        return [required("spec.controller")]
    return []


def networkpolicy(obj: dict) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errs: list[FieldError] = []
    types = spec.get("policyTypes") or []
    for i, t in enumerate(types):
        _enum(f"spec.policyTypes[{i}]", t, ["Ingress", "Egress"], errs)
    if len(types) > 2:
        errs.append(FieldError("FieldValueInvalid", "spec.policyTypes", "may not specify more than "
                               "two policyTypes", types, True))
    for direction in ("ingress", "egress"):
        for i, rule in enumerate(spec.get(direction) or []):
            for j, port in enumerate(rule.get("ports") or []):
                _enum(f"spec.{direction}[{i}].ports[{j}].protocol", port.get("protocol"),
                      ["SCTP", "TCP", "UDP"], errs)
    return errs


# ---- storage.k8s.io ----

def storageclass(obj: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    if not obj.get("provisioner"):
        errs.append(required("provisioner"))
    _enum("reclaimPolicy", obj.get("reclaimPolicy"), ["Delete", "Retain"], errs)
    _enum("volumeBindingMode", obj.get("volumeBindingMode"), ["Immediate", "WaitForFirstConsumer"], errs)
    return errs


def storageclass_update(old: dict, new: dict) -> list[FieldError]:
    return _immutable(old, new, ("parameters", "provisioner", "reclaimPolicy", "volumeBindingMode"),
                      "forbidden")


def csidriver_update(old: dict, new: dict) -> list[FieldError]:
    o, n = old.get("spec") or {}, new.get("spec") or {}
    errs = []
    for f in ("attachRequired", "podInfoOnMount", "volumeLifecycleModes", "fsGroupPolicy"):
        if o.get(f) != n.get(f):
            errs.append(invalid(f"spec.{f}", n.get(f), "field is immutable"))
    return errs


def volumeattachment(obj: dict) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errs: list[FieldError] = []
    if not spec.get("attacher"):
        errs.append(required("spec.attacher"))
    if not spec.get("nodeName"):
        errs.append(required("spec.nodeName"))
    src = spec.get("source") or {}
    if bool(src.get("persistentVolumeName")) == bool(src.get("inlineVolumeSpec")):
        errs.append(required("spec.source", "must specify exactly one of inlineVolumeSpec and "
                             "persistentVolumeName"))
    return errs


def volumeattachment_update(old: dict, new: dict) -> list[FieldError]:
    if old.get("spec") != new.get("spec"):
        return [invalid("spec", "", "field is immutable")]
    return []


# ---- rbac.authorization.k8s.io ----

def _rules(obj: dict, errs: list[FieldError]) -> None:
    for i, rule in enumerate(obj.get("rules") or []):
        if not rule.get("verbs"):
            errs.append(required(f"rules[{i}].verbs", "verbs must contain at least one value"))
        if rule.get("nonResourceURLs"):
            if (obj.get("metadata") or {}).get("namespace"):
                errs.append(invalid(f"rules[{i}].nonResourceURLs", rule["nonResourceURLs"],
                                    "namespaced rules cannot apply to non-resource URLs"))
            if rule.get("apiGroups") or rule.get("resources"):
                errs.append(invalid(f"rules[{i}].nonResourceURLs", rule["nonResourceURLs"],
                                    "rules cannot apply to both regular resources and non-resource URLs"))
        elif not rule.get("resources"):
            errs.append(required(f"rules[{i}].resources", "resource rules must supply at least one resource"))
        elif rule.get("apiGroups") is None:
            errs.append(required(f"rules[{i}].apiGroups", "resource rules must supply at least one api group"))


def role(obj: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    _rules(obj, errs)
    return errs


def binding(obj: dict, cluster: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    ref = obj.get("roleRef") or {}
    if ref.get("apiGroup") != "rbac.authorization.k8s.io":
        errs.append(not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), ["rbac.authorization.k8s.io"]))
    kinds = ["ClusterRole"] if cluster else ["Role", "ClusterRole"]
    if ref.get("kind") not in kinds:
        errs.append(not_supported("roleRef.kind", ref.get("kind", ""), kinds))
    if not ref.get("name"):
        errs.append(required("roleRef.name"))
    for i, s in enumerate(obj.get("subjects") or []):
        kind = s.get("kind")
        if kind not in ("ServiceAccount", "User", "Group"):
            errs.append(not_supported(f"subjects[{i}].kind", kind or "", ["ServiceAccount", "User", "Group"]))
        if not s.get("name"):
            errs.append(required(f"subjects[{i}].name"))
        if kind == "ServiceAccount" and cluster and not s.get("namespace"):
            errs.append(required(f"subjects[{i}].namespace"))
    return errs


def binding_update(old: dict, new: dict) -> list[FieldError]:
    if old.get("roleRef") != new.get("roleRef"):
        return [invalid("roleRef", new.get("roleRef"), "cannot change roleRef")]
    return []


# ---- autoscaling ----

def hpa(obj: dict) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errs: list[FieldError] = []
    ref = spec.get("scaleTargetRef") or {}
    if not ref.get("kind"):
        errs.append(required("spec.scaleTargetRef.kind"))
    if not ref.get("name"):
        errs.append(required("spec.scaleTargetRef.name"))
    lo, hi = spec.get("minReplicas"), spec.get("maxReplicas")
    if isinstance(lo, int) and lo < 1:
        errs.append(invalid("spec.minReplicas", lo, "must be greater than or equal to 1"))
    if not isinstance(hi, int) or hi < 1:
        errs.append(invalid("spec.maxReplicas", hi, "must be greater than 0"))
    elif isinstance(lo, int) and lo > hi:
        errs.append(invalid("spec.maxReplicas", hi, "must be greater than or equal to `minReplicas`"))
    for i, m in enumerate(spec.get("metrics") or []):
        _enum(f"spec.metrics[{i}].type", m.get("type"),
              ["ContainerResource", "External", "Object", "Pods", "Resource"], errs)
    return errs


# ---- admissionregistration.k8s.io ----

def webhooks(obj: dict, mutating: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    names = set()
    for i, w in enumerate(obj.get("webhooks") or []):
        p = f"webhooks[{i}]"
        name = w.get("name")
        if not name:
            errs.append(required(f"{p}.name"))
        elif name.count(".") < 2 or not _DNS1123_SUBDOMAIN.match(name):
            errs.append(invalid(f"{p}.name", name, "should be a domain with at least three segments "
                                "separated by dots"))
        elif name in names:
            errs.append(duplicate(f"{p}.name", name))
        names.add(name)
        cc = w.get("clientConfig") or {}
        if bool(cc.get("url")) == bool(cc.get("service")):
            errs.append(required(f"{p}.clientConfig", "exactly one of url or service is required"))
        if w.get("sideEffects") is None:
            errs.append(required(f"{p}.sideEffects", "must specify one of None, NoneOnDryRun"))
        else:
            _enum(f"{p}.sideEffects", w["sideEffects"], ["None", "NoneOnDryRun"], errs)
        if not w.get("admissionReviewVersions"):
            errs.append(required(f"{p}.admissionReviewVersions", "must specify one of v1, v1beta1"))
        _enum(f"{p}.failurePolicy", w.get("failurePolicy"), ["Fail", "Ignore"], errs)
        _enum(f"{p}.matchPolicy", w.get("matchPolicy"), ["Equivalent", "Exact"], errs)
        if mutating:
            _enum(f"{p}.reinvocationPolicy", w.get("reinvocationPolicy"), ["IfNeeded", "Never"], errs)
    return errs


def runtimeclass(obj: dict) -> list[FieldError]:
    handler = obj.get("handler")
    if not handler:
        return [required("handler")]
    if not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", handler) or len(handler) > 63:
        return [invalid("handler", handler, "a lowercase RFC 1123 label must consist of lower case "
                        "alphanumeric characters or '-'")]
    return []


def runtimeclass_update(old: dict, new: dict) -> list[FieldError]:
    return _immutable(old, new, ("handler",))


VALIDATORS = {
    "Ingress": ingress, "IngressClass": ingressclass, "NetworkPolicy": networkpolicy,
    "StorageClass": storageclass, "VolumeAttachment": volumeattachment,
    "Role": role, "ClusterRole": role,
    "RoleBinding": lambda o: binding(o, cluster=False),
    "ClusterRoleBinding": lambda o: binding(o, cluster=True),
    "HorizontalPodAutoscaler": hpa,
    "ValidatingWebhookConfiguration": lambda o: webhooks(o, mutating=False),
    "MutatingWebhookConfiguration": lambda o: webhooks(o, mutating=True),
    "RuntimeClass": runtimeclass,
}

UPDATE_VALIDATORS = {
    "StorageClass": storageclass_update, "CSIDriver": csidriver_update,
    "VolumeAttachment": volumeattachment_update, "RoleBinding": binding_update,
    "ClusterRoleBinding": binding_update, "RuntimeClass": runtimeclass_update,
}
