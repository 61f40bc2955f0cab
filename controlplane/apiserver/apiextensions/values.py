"""Checking a custom resource against its CRD's OpenAPI v3 schema: the 422s users see.

Upstream runs kube-openapi's schema validator (a go-openapi fork) and turns each result into a
field error (apiextensions-apiserver validation.go, kubeOpenAPIResultToFieldErrors). The wording
below is theirs, so that a message names the field the same way:

    spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10
    spec.cronSpec: Invalid value: "integer": spec.cronSpec in body must be of type string: "integer"
    spec.cronSpec: Required value
    spec.color: Unsupported value: "pink": supported values: "red", "blue"
    spec.items: Too many: 3: must have at most 2 items

Supported keywords: type (with nullable and x-kubernetes-int-or-string), required, enum,
pattern, minimum/maximum (and exclusive), multipleOf, minLength/maxLength, minItems/maxItems,
uniqueItems, minProperties/maxProperties, format (the common ones), allOf/anyOf/oneOf/not.
CEL rules (x-kubernetes-validations) are not evaluated.
"""

from __future__ import annotations

import base64
import datetime as _dt
import ipaddress
import json
import re
import uuid
from typing import Any

from controlplane.apiserver.errors import FieldError, not_supported, required

_TYPE_NAME = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
              dict: "object", type(None): "null"}


def type_name(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return "integer"  # JSON has one number type; 3.0 is an integer to the validator
    return _TYPE_NAME.get(type(v), "object")


def _num(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


class _GoMap(dict):
    """A map key printed as upstream's message prints it (Go's %#v of the key fields)."""

    def __str__(self) -> str:
        return "map[string]interface {}{" + ", ".join(
            f'"{k}":{json.dumps(v)}' for k, v in sorted(self.items())) + "}"


def validate(obj: Any, schema: dict, path: str = "") -> list[FieldError]:
    errs: list[FieldError] = []
    _validate(obj, schema, path, errs, root=True)
    return errs


def _invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", path, detail, value, True)


def _type_ok(v: Any, typ: str) -> bool:
    if typ == "integer":
        return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
    if typ == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if typ == "string":
        return isinstance(v, str)
    if typ == "boolean":
        return isinstance(v, bool)
    if typ == "array":
        return isinstance(v, list)
    if typ == "object":
        return isinstance(v, dict)
    return True


def _validate(v: Any, s: dict, path: str, errs: list[FieldError], root: bool = False) -> None:
    if not isinstance(s, dict):
        return
    name = path or "."
    if v is None:
        if s.get("nullable") or not s.get("type"):
            return
        typ = s["type"]
        errs.append(FieldError("FieldValueTypeInvalid", path,
                               f'{name} in body must be of type {typ}: "null"', "null", True))
        return
    if s.get("x-kubernetes-int-or-string"):
        if not (isinstance(v, str) or _type_ok(v, "integer")):
            t = type_name(v)
            errs.append(FieldError("FieldValueTypeInvalid", path,
                                   f'{name} in body must be of type integer,string: "{t}"', t, True))
            return
    elif s.get("type") and not _type_ok(v, s["type"]):
        t = type_name(v)
        errs.append(FieldError("FieldValueTypeInvalid", path,
                               f'{name} in body must be of type {s["type"]}: "{t}"', t, True))
        return
    if "enum" in s and s["enum"] is not None and v not in s["enum"]:
        allowed = [e if isinstance(e, str) else json.dumps(e, separators=(",", ":")) for e in s["enum"]]
        errs.append(not_supported(path, v, allowed))
    if isinstance(v, str):
        _string(v, s, path, name, errs)
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        _number(v, s, path, name, errs)
    elif isinstance(v, list):
        _array(v, s, path, name, errs)
    elif isinstance(v, dict):
        _object(v, s, path, name, errs, root)
    _junctors(v, s, path, name, errs)


def _string(v: str, s: dict, path: str, name: str, errs: list[FieldError]) -> None:
    if s.get("maxLength") is not None and len(v) > s["maxLength"]:
        errs.append(FieldError("FieldValueTooLong", path,  # upstream prints no value for these
                               f"may not be more than {s['maxLength']} bytes"))
    if s.get("minLength") is not None and len(v) < s["minLength"]:
        errs.append(_invalid(path, v, f"{name} in body should be at least {s['minLength']} chars long"))
    if s.get("pattern"):
        try:
            ok = re.search(s["pattern"], v) is not None
        except re.error:
            ok = True  # rejected when the CRD was written; never here
        if not ok:
            errs.append(_invalid(path, v, f"{name} in body should match '{s['pattern']}'"))
    fmt = s.get("format")
    if fmt and not _format_ok(fmt, v):
        errs.append(FieldError("FieldValueTypeInvalid", path,
                               f'{name} in body must be of type {fmt}: "{v}"', v, True))


def _number(v, s: dict, path: str, name: str, errs: list[FieldError]) -> None:
    mx, mn = s.get("maximum"), s.get("minimum")
    if mx is not None:
        if s.get("exclusiveMaximum") and v >= mx:
            errs.append(_invalid(path, v, f"{name} in body should be less than {_num(mx)}"))
        elif v > mx:
            errs.append(_invalid(path, v, f"{name} in body should be less than or equal to {_num(mx)}"))
    if mn is not None:
        if s.get("exclusiveMinimum") and v <= mn:
            errs.append(_invalid(path, v, f"{name} in body should be greater than {_num(mn)}"))
        elif v < mn:
            errs.append(_invalid(path, v, f"{name} in body should be greater than or equal to {_num(mn)}"))
    mo = s.get("multipleOf")
    if mo and (v / mo) != int(v / mo):
        errs.append(_invalid(path, v, f"{name} in body should be a multiple of {_num(mo)}"))


def _array(v: list, s: dict, path: str, name: str, errs: list[FieldError]) -> None:
    if s.get("maxItems") is not None and len(v) > s["maxItems"]:
        errs.append(FieldError("FieldValueTooMany", path, f"must have at most {s['maxItems']} items",
                               len(v), True))
    if s.get("minItems") is not None and len(v) < s["minItems"]:
        errs.append(_invalid(path, len(v), f"{name} in body should have at least {s['minItems']} items"))
    if s.get("uniqueItems") or s.get("x-kubernetes-list-type") == "set":
        seen = []
        for i, item in enumerate(v):
            if item in seen:
                errs.append(FieldError("FieldValueDuplicate", f"{path}[{i}]", "", item, True))
            seen.append(item)
    if s.get("x-kubernetes-list-type") == "map":
        keys = s.get("x-kubernetes-list-map-keys") or []
        seen_keys = set()
        for i, item in enumerate(v):
            if isinstance(item, dict):
                k = json.dumps([item.get(key) for key in keys])
                if k in seen_keys:
                    errs.append(FieldError("FieldValueDuplicate", f"{path}[{i}]", "",
                                           _GoMap({key: item.get(key) for key in keys}), True))
                seen_keys.add(k)
    items = s.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(v):
            _validate(item, items, f"{path}[{i}]", errs)


def _object(v: dict, s: dict, path: str, name: str, errs: list[FieldError], root: bool) -> None:
    for r in s.get("required") or []:
        if r not in v:
            errs.append(required(f"{path}.{r}" if path else r))
    if s.get("maxProperties") is not None and len(v) > s["maxProperties"]:
        errs.append(FieldError("FieldValueTooMany", path,
                               f"must have at most {s['maxProperties']} items", len(v), True))
    if s.get("minProperties") is not None and len(v) < s["minProperties"]:
        errs.append(_invalid(path, len(v), f"{name} in body should have at least "
                             f"{s['minProperties']} properties"))
    if s.get("x-kubernetes-embedded-resource") and v:
        # a whole object inside this one (a template): upstream's objectmeta validation
        for key in ("apiVersion", "kind"):
            if not v.get(key):
                errs.append(required(f"{path}.{key}" if path else key, "must not be empty"))
    props = s.get("properties") or {}
    ap = s.get("additionalProperties")
    for k, item in v.items():
        if root and k == "metadata" and isinstance(item, dict) and "metadata" in props:
            # a schema may restrict only name and generateName (structural.py checks that)
            for f, sub in ((props["metadata"] or {}).get("properties") or {}).items():
                if f in ("name", "generateName") and f in item:
                    _validate(item[f], sub, f"metadata.{f}", errs)
            continue
        if root and k in ("metadata", "apiVersion", "kind"):
            continue  # the server's to check (ObjectMeta validation), as upstream
        sub = f"{path}.{k}" if path else k
        if k in props:
            _validate(item, props[k], sub, errs)
        elif isinstance(ap, dict):
            _validate(item, ap, sub, errs)


def _junctors(v: Any, s: dict, path: str, name: str, errs: list[FieldError]) -> None:
    for sub in s.get("allOf") or []:
        _validate(v, sub, path, errs)
    any_of = s.get("anyOf")
    if any_of:
        if not any(not validate_quiet(v, alt, path) for alt in any_of):
            errs.append(_invalid(path, v, f"{name} in body must validate at least one schema (anyOf)"))
    one_of = s.get("oneOf")
    if one_of:
        n = sum(1 for alt in one_of if not validate_quiet(v, alt, path))
        if n != 1:
            errs.append(_invalid(path, v, f"{name} in body must validate one and only one schema (oneOf)"))
    if isinstance(s.get("not"), dict) and not validate_quiet(v, s["not"], path):
        errs.append(_invalid(path, v, f"{name} in body should not validate the schema provided"))


def validate_quiet(v: Any, s: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    _validate(v, s, path, errs)
    return errs


# ---- formats (kube-openapi's strfmt subset that CRDs validate) ----

_FORMATS = {
    "bsonobjectid": re.compile(r"^[0-9a-fA-F]{24}$"),
    "uuid": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$"),
    "uuid3": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$"),
    "uuid4": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"),
    "uuid5": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"),
    "email": re.compile(r"^[^@\s]+@[^@\s]+$"),
    "hostname": re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]{0,62})?(\.[a-zA-Z0-9]([-a-zA-Z0-9]{0,62})?)*\.?$"),
    "mac": re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$"),
    "date": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "isbn": re.compile(r"^(\d{9}[\dX]|\d{13})$"),
    "hexcolor": re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"),
    "rgbcolor": re.compile(r"^rgb\(\s*\d{1,3}\s*,\s*\d{1,3}\s*,\s*\d{1,3}\s*\)$"),
}


def _format_ok(fmt: str, v: str) -> bool:
    try:
        if fmt == "ipv4":
            return isinstance(ipaddress.ip_address(v), ipaddress.IPv4Address)
        if fmt == "ipv6":
            return isinstance(ipaddress.ip_address(v), ipaddress.IPv6Address)
        if fmt == "cidr":
            ipaddress.ip_network(v, strict=False)
            return "/" in v
        if fmt == "uri":
            return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", v) or v.startswith("/"))
        if fmt == "date-time":
            _dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
            return "T" in v or "t" in v
        if fmt == "byte":
            base64.b64decode(v, validate=True)
            return True
        if fmt == "duration":
            return bool(re.match(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d|w))+$", v))
        if fmt == "uuid" and v:
            uuid.UUID(v)
    except ValueError:
        return False
    rx = _FORMATS.get(fmt)
    return rx is None or rx.match(v) is not None
