"""Structural schemas: the shape of a custom resource, and what the server does with it.

A CRD's `openAPIV3Schema` is *structural* (required by apiextensions.k8s.io/v1) when every field
and array item says its `type`, and the logic junctors (allOf, anyOf, oneOf, not) only add value
checks — never new fields, types, defaults or descriptions. Then the schema alone says which
fields exist, and the server can do three things upstream does (apiserver/schema/):

- prune: drop every field the schema does not specify, unless a node says
  `x-kubernetes-preserve-unknown-fields: true` (Helm charts' "anything goes here");
  `x-kubernetes-embedded-resource` nodes keep apiVersion, kind and metadata (a whole object);
- default: fill `default:` values where a field is missing (or null and not nullable), after
  dropping non-nullable nulls that have no default;
- describe: the list/map topology (`x-kubernetes-list-type`, `list-map-keys`, `map-type`) per
  path, which server-side apply needs (`list_types`).

`validate_structural` rejects non-structural schemas with upstream's messages
(ValidateStructural: "must not be empty for specified object fields", ...). Schemas stay plain
dicts (the JSON the user wrote); paths are written as upstream's field.Path renders them:
`properties[spec].type`.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Iterator

from controlplane.apiserver.errors import FieldError, forbidden_field, invalid, not_supported, required

JUNCTORS = ("allOf", "anyOf", "oneOf")
_INT_OR_STRING_ANYOF = [{"type": "integer"}, {"type": "string"}]


# ---- structural validation ----

def validate_structural(schema: dict, path: str) -> list[FieldError]:
    errs = _invariants(schema, "root", path) + _completeness(schema, path)
    return sorted(errs, key=lambda e: f"{e.field}: {e.text()}")


# ---- completeness: what a junctor names must exist outside it ----

def _completeness(s: Any, path: str) -> list[FieldError]:
    """Every field or item a value validation (allOf, anyOf, oneOf, not) speaks of must also be
    specified in the structural part (upstream's validateStructuralCompleteness)."""
    if not isinstance(s, dict):
        return []
    errs: list[FieldError] = []
    for j in JUNCTORS:
        for i, n in enumerate(s.get(j) or []):
            errs += _nested_complete(n, s, path, f"{path}.{j}[{i}]")
    if isinstance(s.get("not"), dict):
        errs += _nested_complete(s["not"], s, path, f"{path}.not")
    for k, v in (s.get("properties") or {}).items():
        errs += _completeness(v, _child(path, k))
    if isinstance(s.get("items"), dict):
        errs += _completeness(s["items"], f"{path}.items")
    if isinstance(s.get("additionalProperties"), dict):
        errs += _completeness(s["additionalProperties"], f"{path}.additionalProperties")
    return errs


def _nested_complete(v: Any, s: dict | None, spath: str, vpath: str) -> list[FieldError]:
    if not isinstance(v, dict):
        return []
    if s is None:
        return [required(spath, f"because it is defined in {vpath}")]
    errs: list[FieldError] = []
    for k, sub in (v.get("properties") or {}).items():
        props = s.get("properties") or {}
        ap = s.get("additionalProperties")
        target = props.get(k) if k in props else (ap if isinstance(ap, dict) else None)
        errs += _nested_complete(sub, target, _child(spath, k), _child(vpath, k))
    if isinstance(v.get("items"), dict):
        items = s.get("items") if isinstance(s.get("items"), dict) else None
        errs += _nested_complete(v["items"], items, f"{spath}.items", f"{vpath}.items")
    for j in JUNCTORS:
        for i, n in enumerate(v.get(j) or []):
            errs += _nested_complete(n, s, spath, f"{vpath}.{j}[{i}]")
    if isinstance(v.get("not"), dict):
        errs += _nested_complete(v["not"], s, spath, f"{vpath}.not")
    return errs


def _child(path: str, key: str) -> str:
    return f"{path}.properties[{key}]"


def _invariants(s: Any, level: str, path: str) -> list[FieldError]:
    if not isinstance(s, dict):
        return []
    errs: list[FieldError] = []
    typ = s.get("type", "")
    if typ == "array" and s.get("items") is None:
        errs.append(required(f"{path}.items", "must be specified"))
    if isinstance(s.get("items"), dict):
        errs += _invariants(s["items"], "item", f"{path}.items")
    elif isinstance(s.get("items"), list):
        errs.append(forbidden_field(f"{path}.items", "items must be a schema object and not an array"))
    props = s.get("properties") or {}
    for k, v in props.items():
        errs += _invariants(v, "field", _child(path, k))
    ap = s.get("additionalProperties")
    if ap is not None:
        if level == "root":
            errs.append(forbidden_field(f"{path}.additionalProperties", "must not be used at the root"))
        if props and ap is not False:
            errs.append(forbidden_field(f"{path}.additionalProperties",
                                        "additionalProperties and properties are mutual exclusive"))
        if isinstance(ap, dict):
            errs += _invariants(ap, "field", f"{path}.additionalProperties")
    int_or_string = bool(s.get("x-kubernetes-int-or-string"))
    preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
    embedded = bool(s.get("x-kubernetes-embedded-resource"))
    if int_or_string and preserve:
        errs.append(invalid(f"{path}.x-kubernetes-preserve-unknown-fields", True,
                            "must be false if x-kubernetes-int-or-string is true"))
    if int_or_string and embedded:
        errs.append(invalid(f"{path}.x-kubernetes-embedded-resource", True,
                            "must be false if x-kubernetes-int-or-string is true"))
    skip_anyof = s.get("anyOf") == _INT_OR_STRING_ANYOF
    all_of = s.get("allOf") or []
    skip_first = bool(all_of) and isinstance(all_of[0], dict) and \
        all_of[0].get("anyOf") == _INT_OR_STRING_ANYOF
    errs += _value_validation(s, skip_anyof, skip_first, level, path)
    if embedded and typ != "object":
        if not typ:
            errs.append(required(f"{path}.type", "must be object if x-kubernetes-embedded-resource is true"))
        else:
            errs.append(invalid(f"{path}.type", typ, "must be object if x-kubernetes-embedded-resource is true"))
    elif not typ and not int_or_string and not preserve:
        where = {"root": "at the root", "item": "for specified array items",
                 "field": "for specified object fields"}[level]
        errs.append(required(f"{path}.type", f"must not be empty {where}"))
    if embedded and ap is not None:
        errs.append(forbidden_field(f"{path}.additionalProperties",
                                    "must not be used if x-kubernetes-embedded-resource is set"))
    if level == "root" and typ and typ != "object":
        errs.append(invalid(f"{path}.type", typ, "must be object at the root"))
    check_meta = level == "root" or embedded
    for name in ("kind", "apiVersion"):
        if name in props and check_meta and (props[name] or {}).get("type") != "string":
            errs.append(invalid(f"{_child(path, name)}.type", (props[name] or {}).get("type", ""),
                                "must be string"))
    if "metadata" in props:
        errs += _metadata(props["metadata"] or {}, check_meta, level, _child(path, "metadata"))
    if embedded and not preserve and not props:
        errs.append(required(f"{path}.properties", "must not be empty if x-kubernetes-embedded-resource "
                             "is true without x-kubernetes-preserve-unknown-fields"))
    errs += _standard(s, path)
    return errs


_TYPES = ["array", "boolean", "integer", "number", "object", "string"]
_UNSUPPORTED = (("id", "id is not supported"), ("additionalItems", "additionalItems is not supported"),
                ("patternProperties", "patternProperties is not supported"),
                ("definitions", "definitions is not supported"),
                ("dependencies", "dependencies is not supported"), ("$ref", "$ref is not supported"))


def _standard(s: dict, path: str) -> list[FieldError]:
    """What OpenAPI v3 schemas of CRDs may not say, and the list/map topology rules
    (upstream's specStandardValidatorV3 and validateSchemaListType...)."""
    errs: list[FieldError] = []
    typ = s.get("type")
    if typ == "null":
        errs.append(forbidden_field(f"{path}.type", "type cannot be set to null, use nullable as an alternative"))
    elif typ and typ not in _TYPES:
        errs.append(not_supported(f"{path}.type", typ, _TYPES))
    for key, detail in _UNSUPPORTED:
        if s.get(key):
            errs.append(forbidden_field(f"{path}.{key}", detail))
    list_type, keys = s.get("x-kubernetes-list-type"), s.get("x-kubernetes-list-map-keys") or []
    items = s.get("items") if isinstance(s.get("items"), dict) else None
    if list_type is not None and list_type not in ("atomic", "set", "map"):
        errs.append(not_supported(f"{path}.x-kubernetes-list-type", list_type, ["atomic", "set", "map"]))
    if keys and list_type is None:
        errs.append(required(f"{path}.x-kubernetes-list-type", "must be map if x-kubernetes-list-map-keys is non-empty"))
    elif keys and list_type != "map":
        errs.append(invalid(f"{path}.x-kubernetes-list-type", list_type,
                            "must be map if x-kubernetes-list-map-keys is non-empty"))
    if list_type == "map":
        if not keys:
            errs.append(required(f"{path}.x-kubernetes-list-map-keys", "must not be empty if x-kubernetes-list-type is map"))
        if items is None:
            errs.append(required(f"{path}.items", "must have a schema if x-kubernetes-list-type is map"))
        elif items.get("type") != "object":
            errs.append(invalid(f"{path}.items.type", items.get("type", ""),
                                "must be object if parent array's x-kubernetes-list-type is map"))
        else:
            props = items.get("properties") or {}
            need = set(items.get("required") or [])
            seen: set = set()
            for k in keys:
                if k not in props:
                    errs.append(invalid(f"{path}.x-kubernetes-list-map-keys", keys,
                                        "entries must all be names of item properties"))
                else:
                    if props[k].get("type") in ("array", "object"):
                        errs.append(invalid(f"{path}.items.properties[{k}].type", "object",
                                            "must be a scalar type if parent array's x-kubernetes-list-type is map"))
                    if k not in need and "default" not in props[k]:
                        errs.append(required(f"{path}.items.properties[{k}].default", "this property is in "
                                             "x-kubernetes-list-map-keys, so it must have a default or be a "
                                             "required property"))
                    if props[k].get("nullable"):
                        errs.append(forbidden_field(f"{path}.items.properties[{k}].nullable", "this property is "
                                                    "in x-kubernetes-list-map-keys, so it cannot be nullable"))
                if k in seen:
                    errs.append(invalid(f"{path}.x-kubernetes-list-map-keys", keys, "must not contain duplicate entries"))
                seen.add(k)
    if list_type in ("set", "map") and items is not None and items.get("nullable"):
        errs.append(forbidden_field(f"{path}.items.nullable", f"cannot be nullable when x-kubernetes-list-type is {list_type}"))
    map_type = s.get("x-kubernetes-map-type")
    if map_type is not None and map_type not in ("granular", "atomic"):
        errs.append(not_supported(f"{path}.x-kubernetes-map-type", map_type, ["granular", "atomic"]))
    return errs


def _metadata(s: dict, check_meta: bool, level: str, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if check_meta and s.get("type") != "object":
        errs.append(invalid(f"{path}.type", s.get("type", ""), "must be object"))
    if level == "root":
        props = set((s.get("properties") or {}).keys())
        rest = {k: v for k, v in s.items() if k not in ("type", "default", "properties")}
        if not props <= {"name", "generateName"} or rest:
            errs.append(forbidden_field(path, "must not specify anything other than name and "
                                        "generateName, but metadata is implicitly specified"))
    return errs


def _value_validation(s: dict, skip_anyof: bool, skip_first_allof_anyof: bool, level: str,
                      path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not skip_anyof:
        for i, n in enumerate(s.get("anyOf") or []):
            errs += _nested(n, False, level, f"{path}.anyOf[{i}]")
    for i, n in enumerate(s.get("allOf") or []):
        errs += _nested(n, skip_first_allof_anyof and i == 0, level, f"{path}.allOf[{i}]")
    for i, n in enumerate(s.get("oneOf") or []):
        errs += _nested(n, False, level, f"{path}.oneOf[{i}]")
    if isinstance(s.get("not"), dict):
        errs += _nested(s["not"], False, level, f"{path}.not")
    pattern = s.get("pattern")
    if pattern:
        try:
            re.compile(pattern)
        except re.error as e:
            errs.append(invalid(f"{path}.pattern", pattern,
                                f"must be a valid regular expression, but isn't: {e}"))
    return errs


# What a schema under a junctor may not say (ValidateStructural's ForbiddenGenerics/Extensions).
_NESTED_FORBIDDEN = (
    ("type", lambda v: bool(v), "must be empty to be structural"),
    ("additionalProperties", lambda v: v is not None, "must be undefined to be structural"),
    ("default", lambda v: v is not None, "must be undefined to be structural"),
    ("title", lambda v: bool(v), "must be empty to be structural"),
    ("description", lambda v: bool(v), "must be empty to be structural"),
    ("nullable", lambda v: bool(v), "must be false to be structural"),
    ("externalDocs", lambda v: v is not None, "must be undefined to be structural"),
    ("x-kubernetes-preserve-unknown-fields", lambda v: bool(v), "must be false to be structural"),
    ("x-kubernetes-embedded-resource", lambda v: bool(v), "must be false to be structural"),
    ("x-kubernetes-int-or-string", lambda v: bool(v), "must be false to be structural"),
    ("x-kubernetes-list-map-keys", lambda v: bool(v), "must be empty to be structural"),
    ("x-kubernetes-list-type", lambda v: v is not None, "must be undefined to be structural"),
    ("x-kubernetes-map-type", lambda v: v is not None, "must be undefined to be structural"),
    ("x-kubernetes-validations", lambda v: bool(v), "must be empty to be structural"),
)


def _nested(n: Any, skip_anyof: bool, level: str, path: str) -> list[FieldError]:
    if not isinstance(n, dict):
        return []
    errs = _value_validation(n, skip_anyof, False, level, path)
    if isinstance(n.get("items"), dict):
        errs += _nested(n["items"], False, level, f"{path}.items")
    for k, v in (n.get("properties") or {}).items():
        errs += _nested(v, False, "field", _child(path, k))
    for key, bad, detail in _NESTED_FORBIDDEN:
        if bad(n.get(key)):
            errs.append(forbidden_field(f"{path}.{key}", detail))
    if "metadata" in (n.get("properties") or {}):
        errs.append(forbidden_field(_child(path, "metadata"), "must not be specified in a nested context"))
    return errs


# ---- walking a schema alongside a value ----

def field_schema(s: dict | None, name: str) -> dict | None:
    """The schema of property `name` of object schema s, or None when s does not specify it."""
    if not s:
        return None
    props = s.get("properties")
    if props and name in props:
        return props[name]
    ap = s.get("additionalProperties")
    if isinstance(ap, dict):
        return ap
    return None


def _preserves(s: dict) -> bool:
    return bool(s.get("x-kubernetes-preserve-unknown-fields"))


# ---- pruning ----

_EMBEDDED_KEEP = ("apiVersion", "kind", "metadata")


def prune(obj: Any, s: dict | None, root: bool = True, path: str = "") -> list[str]:
    """Drop what the schema does not specify; returns the paths dropped (for fieldValidation).
    At the root (and in embedded resources) apiVersion, kind and metadata always stay; metadata
    itself is the server's to check, not the schema's."""
    dropped: list[str] = []
    _prune(obj, s, root, path, dropped)
    return dropped


def _prune(x: Any, s: dict | None, root: bool, path: str, dropped: list[str]) -> None:
    if s is None:
        return
    if isinstance(x, dict):
        embedded = root or bool(s.get("x-kubernetes-embedded-resource"))
        props = s.get("properties") or {}
        ap = s.get("additionalProperties")
        for k in list(x):
            sub = f"{path}.{k}" if path else k
            if embedded and k in _EMBEDDED_KEEP:
                if k == "metadata" and isinstance(x[k], dict) and not root:
                    _prune_embedded_metadata(x[k], sub, dropped)
                continue
            if k in props:
                _prune(x[k], props[k], False, sub, dropped)
            elif isinstance(ap, dict):
                _prune(x[k], ap, False, sub, dropped)
            elif ap is True or _preserves(s):
                continue
            else:
                del x[k]
                dropped.append(sub)
    elif isinstance(x, list):
        items = s.get("items") if isinstance(s.get("items"), dict) else None
        for i, v in enumerate(x):
            _prune(v, items, False, f"{path}[{i}]", dropped)


# The ObjectMeta fields an embedded resource's metadata may carry (pruned like ObjectMeta).
_META_FIELDS = {"name", "generateName", "namespace", "selfLink", "uid", "resourceVersion",
                "generation", "creationTimestamp", "deletionTimestamp",
                "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
                "finalizers", "managedFields"}


def _prune_embedded_metadata(md: dict, path: str, dropped: list[str]) -> None:
    for k in list(md):
        if k not in _META_FIELDS:
            del md[k]
            dropped.append(f"{path}.{k}")


# ---- defaulting ----

def default(x: Any, s: dict | None) -> None:
    """Fill in defaults in place (structuraldefaulting.Default), after pruning the nulls that
    a non-nullable field without default cannot keep (PruneNonNullableNullsWithoutDefaults)."""
    _prune_nulls(x, s)
    _default(x, s)


def _prune_nulls(x: Any, s: dict | None) -> None:
    if isinstance(x, dict):
        for k in list(x):
            sub = field_schema(s, k)
            if x[k] is None and sub is not None and not sub.get("nullable") and "default" not in sub:
                del x[k]
            else:
                _prune_nulls(x[k], sub)
    elif isinstance(x, list):
        items = s.get("items") if s and isinstance(s.get("items"), dict) else None
        for v in x:
            _prune_nulls(v, items)


def _default(x: Any, s: dict | None) -> None:
    if not s:
        return
    if isinstance(x, dict):
        for k, prop in (s.get("properties") or {}).items():
            if "default" not in prop:
                continue
            if k not in x or (x[k] is None and not prop.get("nullable")):
                x[k] = copy.deepcopy(prop["default"])
        for k, v in x.items():
            sub = field_schema(s, k)
            if sub is not None:
                _default(v, sub)
    elif isinstance(x, list):
        items = s.get("items") if isinstance(s.get("items"), dict) else None
        for v in x:
            _default(v, items)


def has_defaults(s: Any) -> bool:
    """Whether any node of the schema declares a default (reads may then change objects)."""
    if isinstance(s, dict):
        return "default" in s or any(has_defaults(v) for v in s.values())
    if isinstance(s, list):
        return any(has_defaults(v) for v in s)
    return False


# ---- list and map topology, for server-side apply ----

def list_types(s: dict | None, path: str = "") -> dict[str, dict]:
    """Path → the topology extensions declared there, for every node of the schema that has
    any: {"listType": "map", "listMapKeys": ["name"]} or {"mapType": "atomic"}. Paths are dotted
    field names with `[]` for list items ("spec.ports[]") and `{}` for additionalProperties
    values ("spec.labels{}"); the root is "". Server-side apply merges a list by these keys
    (upstream reads the same extensions from the schema, structured-merge-diff's schema)."""
    out: dict[str, dict] = {}
    for p, node in _walk(s, path):
        info = {}
        if node.get("x-kubernetes-list-type"):
            info["listType"] = node["x-kubernetes-list-type"]
        if node.get("x-kubernetes-list-map-keys"):
            info["listMapKeys"] = list(node["x-kubernetes-list-map-keys"])
        if node.get("x-kubernetes-map-type"):
            info["mapType"] = node["x-kubernetes-map-type"]
        if info:
            out[p] = info
    return out


def _walk(s: dict | None, path: str) -> Iterator[tuple[str, dict]]:
    if not isinstance(s, dict):
        return
    yield path, s
    for k, v in (s.get("properties") or {}).items():
        yield from _walk(v, f"{path}.{k}" if path else k)
    if isinstance(s.get("items"), dict):
        yield from _walk(s["items"], path + "[]")
    if isinstance(s.get("additionalProperties"), dict):
        yield from _walk(s["additionalProperties"], path + "{}")
