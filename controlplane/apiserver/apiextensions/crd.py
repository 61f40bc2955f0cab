"""The CustomResourceDefinition object itself: defaults, validation, and the status the server
gives it (apiextensions-apiserver's validation.go, naming controller and establishing controller).

A CRD is valid when (the checks users meet, with upstream's messages):
- its name is `<spec.names.plural>.<spec.group>` and the group is a domain with a dot (groups
  under k8s.io / kubernetes.io need the `api-approved.kubernetes.io` annotation);
- names are DNS-1035 labels (plural, singular, shortNames, lower-cased kind and listKind);
- scope is Namespaced or Cluster (and never changes);
- versions are unique, at least one is served, exactly one is the storage version, and each
  has a structural `openAPIV3Schema` (structural.py) whose defaults validate;
- subresources.scale paths are JSON paths under .spec / .status; printer columns are complete.

Status: upstream's naming controller accepts the names unless another CRD of the group already
uses them (NamesAccepted, reasons PluralConflict, KindConflict, ...), then the establishing
controller marks it Established. Here both happen in the same write, so a CRD is served the
moment its create returns (upstream: within a few hundred milliseconds).
"""

from __future__ import annotations

import copy
import re

from controlplane.apiserver import meta
from controlplane.apiserver.apiextensions import structural, values
from controlplane.apiserver.errors import (
    FieldError, duplicate, forbidden_field, invalid, not_supported, required)

GROUP = "apiextensions.k8s.io"
FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
APPROVAL = "api-approved.kubernetes.io"
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
                "with an alphabetic character, and end with an alphanumeric character (e.g. "
                "'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
_PRINTER_TYPES = ["integer", "number", "string", "boolean", "date"]


def default(crd: dict) -> None:
    """SetDefaults_CustomResourceDefinition(Spec) for v1."""
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return
    names = spec.get("names")
    if isinstance(names, dict) and names.get("kind"):
        names.setdefault("singular", str(names["kind"]).lower())
        names.setdefault("listKind", f"{names['kind']}List")
    conv = spec.get("conversion")
    if not isinstance(conv, dict):
        spec["conversion"] = {"strategy": "None"}
    elif not conv.get("strategy"):
        conv["strategy"] = "None"


def _label(path: str, value, errs: list[FieldError]) -> None:
    if not isinstance(value, str) or len(value) > 63 or not _DNS1035.match(value):
        errs.append(invalid(path, value, _DNS1035_MSG))


def validate(crd: dict, builtin_groups: frozenset[str]) -> list[FieldError]:
    errs: list[FieldError] = []
    md = crd.get("metadata") or {}
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return [required("spec")]
    group = spec.get("group") or ""
    names = spec.get("names") if isinstance(spec.get("names"), dict) else {}
    plural = names.get("plural") or ""
    name = md.get("name", "")
    if name != f"{plural}.{group}":
        errs.append(invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    if not group:
        errs.append(required("spec.group"))
    elif "." not in group:
        errs.append(invalid("spec.group", group, "should be a domain with at least one dot"))
    else:
        errs += meta.name_errors("CustomResourceDefinition", group, "spec.group")
        if _protected(group, builtin_groups) and not (md.get("annotations") or {}).get(APPROVAL):
            errs.append(required(f"metadata.annotations[{APPROVAL}]",
                                 f'protected groups must have approval annotation "{APPROVAL}", see '
                                 f'https://github.com/kubernetes/enhancements/pull/1111'))
    scope = spec.get("scope")
    if not scope:
        errs.append(required("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        errs.append(not_supported("spec.scope", scope, ["Cluster", "Namespaced"]))
    errs += _names(names)
    if spec.get("preserveUnknownFields"):
        errs.append(invalid("spec.preserveUnknownFields", True, "cannot set to true, set "
                            "x-kubernetes-preserve-unknown-fields to true in "
                            "spec.versions[*].schema instead"))
    conv = spec.get("conversion") or {}
    if conv.get("strategy") not in ("None", "Webhook"):
        errs.append(not_supported("spec.conversion.strategy", conv.get("strategy"), ["None", "Webhook"]))
    elif conv.get("strategy") == "Webhook" and not conv.get("webhook"):
        errs.append(required("spec.conversion.webhook", "required when strategy is set to Webhook"))
    elif conv.get("strategy") == "None" and conv.get("webhook") is not None:
        errs.append(forbidden_field("spec.conversion.webhook", "should not be set when strategy is "
                                    "not set to Webhook"))
    errs += _versions(spec.get("versions"))
    return errs


def _protected(group: str, builtin: frozenset[str]) -> bool:
    return group in builtin or group == "k8s.io" or group.endswith(".k8s.io") or \
        group == "kubernetes.io" or group.endswith(".kubernetes.io")


def _names(names: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    for key in ("plural", "singular"):
        if names.get(key):
            _label(f"spec.names.{key}", names[key], errs)
        elif key == "plural":
            errs.append(required("spec.names.plural"))
    for key in ("kind", "listKind"):
        v = names.get(key)
        if not v:
            errs.append(required(f"spec.names.{key}"))
        elif not _DNS1035.match(str(v).lower()):
            errs.append(invalid(f"spec.names.{key}", v, "may have mixed case, but should otherwise "
                                "match: " + "[a-z]([-a-z0-9]*[a-z0-9])?"))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        errs.append(invalid("spec.names.listKind", names.get("listKind"), "kind and listKind may not be the same"))
    for i, s in enumerate(names.get("shortNames") or []):
        _label(f"spec.names.shortNames[{i}]", s, errs)
    for i, c in enumerate(names.get("categories") or []):
        _label(f"spec.names.categories[{i}]", c, errs)
    return errs


def _versions(versions) -> list[FieldError]:
    errs: list[FieldError] = []
    if not versions:
        return [invalid("spec.versions", None, "must have exactly one version marked as storage version")]
    seen: set[str] = set()
    storage = served = 0
    for i, v in enumerate(versions):
        p = f"spec.versions[{i}]"
        if not isinstance(v, dict):
            errs.append(invalid(p, v, "must be an object"))
            continue
        vname = v.get("name") or ""
        if not vname:
            errs.append(required(f"{p}.name"))
        else:
            _label(f"{p}.name", vname, errs)
            if vname in seen:
                errs.append(duplicate(f"{p}.name", vname))
            seen.add(vname)
        storage += bool(v.get("storage"))
        served += bool(v.get("served"))
        errs += _version_schema(v, p)
        errs += _subresources(v.get("subresources"), f"{p}.subresources")
        errs += _columns(v.get("additionalPrinterColumns"), f"{p}.additionalPrinterColumns")
        errs += _selectable(v, p)
    if storage != 1:
        errs.append(invalid("spec.versions", _go_versions(versions),
                            "must have exactly one version marked as storage version"))
    if not served:
        errs.append(invalid("spec.versions", _go_versions(versions), "must have at least one served version"))
    return errs


def _go_versions(versions) -> str:
    """What upstream prints for the versions value in these messages (a Go %#v) — abridged."""
    return "[]apiextensions.CustomResourceDefinitionVersion{" + ", ".join(
        f'apiextensions.CustomResourceDefinitionVersion{{Name:"{v.get("name", "")}", '
        f'Served:{str(bool(v.get("served"))).lower()}, Storage:{str(bool(v.get("storage"))).lower()}, ...}}'
        for v in versions if isinstance(v, dict)) + "}"


def _version_schema(v: dict, p: str) -> list[FieldError]:
    sp = f"{p}.schema.openAPIV3Schema"
    schema = (v.get("schema") or {}).get("openAPIV3Schema") if isinstance(v.get("schema"), dict) else None
    if schema is None:
        return [required(sp, "schemas are required")]
    if not isinstance(schema, dict):
        return [invalid(sp, "", "must be an object")]
    errs = structural.validate_structural(schema, sp)
    if not errs:
        errs += _defaults(schema, sp)
    return errs


def _defaults(schema: dict, path: str) -> list[FieldError]:
    """A default must itself be valid for its node, and already pruned (upstream validates
    defaults when the CRD is written, so that defaulting never produces an invalid object)."""
    errs: list[FieldError] = []
    for p, crpath, node in _nodes(schema, path, ""):
        if "default" not in node:
            continue
        d = node["default"]
        if p == path + ".properties[metadata]" and d is not None:
            errs.append(forbidden_field(f"{p}.default", "must not be set for metadata"))
            continue
        pruned = copy.deepcopy(d)
        structural.prune(pruned, node, root=False)
        if pruned != d:
            errs.append(invalid(f"{p}.default", d, "must not have unknown fields"))
            continue
        bad = values.validate(d, node, crpath)
        if bad:  # the first problem, at the default's place in the CRD, in the CR's words
            e = bad[0]
            errs.append(FieldError(e.type, f"{p}.default", e.detail, e.value, e.has_value))
    return errs


def _nodes(s: dict, path: str, crpath: str):
    """(path in the CRD, path in a custom resource, node) for every node of a schema."""
    yield path, crpath, s
    for k, v in (s.get("properties") or {}).items():
        if isinstance(v, dict):
            yield from _nodes(v, f"{path}.properties[{k}]", f"{crpath}.{k}" if crpath else k)
    if isinstance(s.get("items"), dict):
        yield from _nodes(s["items"], f"{path}.items", f"{crpath}[0]")
    if isinstance(s.get("additionalProperties"), dict):
        yield from _nodes(s["additionalProperties"], f"{path}.additionalProperties", f"{crpath}[key]")


def _subresources(subs, p: str) -> list[FieldError]:
    if not isinstance(subs, dict):
        return []
    scale = subs.get("scale")
    if not isinstance(scale, dict):
        return []
    errs: list[FieldError] = []
    for key, under, need in (("specReplicasPath", ".spec", True), ("statusReplicasPath", ".status", True),
                             ("labelSelectorPath", "", False)):
        v = scale.get(key)
        if not v:
            if need:
                errs.append(required(f"{p}.scale.{key}"))
            continue
        if not isinstance(v, str) or not re.match(r"^(\.[A-Za-z0-9_-]+)+$", v):
            errs.append(invalid(f"{p}.scale.{key}", v, "must be a simple json path"))
        elif under and not (v.startswith(under + ".")):
            errs.append(invalid(f"{p}.scale.{key}", v, f"should be a json path under {under}"))
        elif not under and not (v.startswith(".spec.") or v.startswith(".status.")):
            errs.append(invalid(f"{p}.scale.{key}", v, "should be a json path under either .spec or .status"))
    return errs


def _selectable(v: dict, p: str) -> list[FieldError]:
    """selectableFields: at most 8, each a path to a string, integer or boolean field."""
    fields = v.get("selectableFields") or []
    schema = ((v.get("schema") or {}).get("openAPIV3Schema")) if isinstance(v.get("schema"), dict) else None
    errs: list[FieldError] = []
    if len(fields) > 8:
        errs.append(FieldError("FieldValueTooMany", f"{p}.selectableFields", "must have at most 8 items",
                               len(fields), True))
    seen: set[str] = set()
    for i, f in enumerate(fields):
        fp = f"{p}.selectableFields[{i}].jsonPath"
        jp = f.get("jsonPath") if isinstance(f, dict) else None
        if not jp:
            errs.append(required(fp))
            continue
        node = schema if isinstance(schema, dict) else None
        for part in jp.lstrip(".").split(".") if jp.startswith(".") else [None]:
            node = structural.field_schema(node, part) if part and isinstance(node, dict) else None
        if node is None:
            errs.append(invalid(fp, jp, "is an invalid path: does not refer to a valid field"))
        elif node.get("type") not in ("string", "integer", "boolean"):
            errs.append(invalid(fp, jp, "must point to a field of type string, boolean or integer. "
                                "Enum string fields and strings with formats are allowed."))
        elif jp in seen:
            errs.append(duplicate(fp, jp))
        seen.add(jp)
    return errs


def _columns(cols, p: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, c in enumerate(cols or []):
        cp = f"{p}[{i}]"
        if not isinstance(c, dict):
            errs.append(invalid(cp, c, "must be an object"))
            continue
        if not c.get("name"):
            errs.append(required(f"{cp}.name"))
        if not c.get("type"):
            errs.append(required(f"{cp}.type"))
        elif c["type"] not in _PRINTER_TYPES:
            errs.append(not_supported(f"{cp}.type", c["type"], _PRINTER_TYPES))
        if c.get("format") and c["format"] not in ("int32", "int64", "float", "double", "byte", "date",
                                                   "date-time", "password"):
            errs.append(not_supported(f"{cp}.format", c["format"], ["int32", "int64", "float", "double",
                                                                    "byte", "date", "date-time", "password"]))
        if not c.get("jsonPath"):
            errs.append(required(f"{cp}.jsonPath"))
        if c.get("priority") is not None and (not isinstance(c["priority"], int) or c["priority"] < 0):
            errs.append(invalid(f"{cp}.priority", c["priority"], "must be greater than or equal to 0"))
    return errs


def validate_update(new: dict, old: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    ns, os_ = new.get("spec") or {}, old.get("spec") or {}
    if ns.get("scope") != os_.get("scope"):
        errs.append(invalid("spec.scope", ns.get("scope"), "field is immutable"))
    if ns.get("group") != os_.get("group"):
        errs.append(invalid("spec.group", ns.get("group"), "field is immutable"))
    stored = (old.get("status") or {}).get("storedVersions") or []
    names = {v.get("name") for v in ns.get("versions") or [] if isinstance(v, dict)}
    for i, sv in enumerate(stored):
        if sv not in names:
            errs.append(invalid(f"status.storedVersions[{i}]", sv, "must appear in spec.versions"))
    return errs


# ---- status: names and conditions ----

def _condition(ctype: str, status: str, reason: str, message: str, old: list) -> dict:
    prev = next((c for c in old if c.get("type") == ctype), None)
    ts = prev["lastTransitionTime"] if prev and prev.get("status") == status and \
        prev.get("lastTransitionTime") else meta.now()
    return {"type": ctype, "status": status, "lastTransitionTime": ts, "reason": reason,
            "message": message}


def compute_status(crd: dict, others: list[dict]) -> None:
    """Set status.acceptedNames, conditions and storedVersions (the naming and establishing
    controllers' work). `others` are the other CRDs of the cluster."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group")
    status = crd.setdefault("status", {}) if isinstance(crd.get("status"), dict) else None
    if status is None:
        crd["status"] = status = {}
    old_conds = status.get("conditions") or []
    taken: dict[str, set] = {"plural": set(), "singular": set(), "kind": set(), "listKind": set(),
                             "short": set()}
    for o in others:
        if (o.get("spec") or {}).get("group") != group:
            continue
        an = (o.get("status") or {}).get("acceptedNames") or {}
        for key in ("plural", "singular", "kind", "listKind"):
            if an.get(key):
                taken[key].add(an[key])
        taken["short"].update(an.get("shortNames") or [])
    previous = status.get("acceptedNames") or {}
    reason = message = ""
    if names.get("plural") in taken["plural"] or names.get("plural") in taken["singular"]:
        reason, message = "PluralConflict", f'"{names.get("plural")}" is already in use'
    elif names.get("singular") in taken["plural"] or names.get("singular") in taken["singular"]:
        reason, message = "SingularConflict", f'"{names.get("singular")}" is already in use'
    elif any(s in taken["short"] or s in taken["plural"] for s in names.get("shortNames") or []):
        s = next(s for s in names.get("shortNames") or [] if s in taken["short"] or s in taken["plural"])
        reason, message = "ShortNamesConflict", f'"{s}" is already in use'
    elif names.get("kind") in taken["kind"] or names.get("kind") in taken["listKind"]:
        reason, message = "KindConflict", f'"{names.get("kind")}" is already in use'
    elif names.get("listKind") in taken["kind"] or names.get("listKind") in taken["listKind"]:
        reason, message = "ListKindConflict", f'"{names.get("listKind")}" is already in use'
    conds = []
    if reason:
        status["acceptedNames"] = previous or {"plural": "", "kind": ""}
        conds.append(_condition("NamesAccepted", "False", reason, message, old_conds))
        established = any(c.get("type") == "Established" and c.get("status") == "True" for c in old_conds)
        conds.append(_condition("Established", "True", "InitialNamesAccepted",
                                "the initial names have been accepted", old_conds) if established else
                     _condition("Established", "False", "NotAccepted", "not all names are accepted",
                                old_conds))
    else:
        accepted = {k: copy.deepcopy(names[k]) for k in ("plural", "singular", "shortNames", "kind",
                                                         "listKind", "categories") if names.get(k)}
        status["acceptedNames"] = accepted
        conds.append(_condition("NamesAccepted", "True", "NoConflicts", "no conflicts found", old_conds))
        conds.append(_condition("Established", "True", "InitialNamesAccepted",
                                "the initial names have been accepted", old_conds))
    conds += [c for c in old_conds if c.get("type") not in ("NamesAccepted", "Established")]
    status["conditions"] = conds
    stored = list(status.get("storedVersions") or [])
    sv = storage_version(crd)
    if sv and sv not in stored:
        stored.append(sv)
    status["storedVersions"] = stored


def storage_version(crd: dict) -> str:
    for v in (crd.get("spec") or {}).get("versions") or []:
        if isinstance(v, dict) and v.get("storage"):
            return v.get("name", "")
    return ""


def is_established(crd: dict) -> bool:
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])
