"""What field management needs to know about a kind's shape: which lists are atomic, sets or maps
(and by which keys), which maps are atomic, which fields are a struct's named fields.

Structured-merge-diff reads this from the schema's extensions (kube-openapi's schemaconv does the
conversion upstream):

    x-kubernetes-list-type: atomic | set | map     a list replaced whole | a set of scalars |
    x-kubernetes-list-map-keys: [name, ...]        items merged by these key fields
    x-kubernetes-map-type: atomic | granular       an object replaced whole | field by field
    x-kubernetes-patch-strategy: merge             (no list-type) a map keyed by the patch merge
    x-kubernetes-patch-merge-key: name             key, or a set when there is no key
    (nothing)                                      an atomic list; a granular object

`int-or-string`, `date-time` and schemaless values ("untyped") are deduced from the value itself:
an object is granular, a list atomic, anything else a scalar.

The interface is `Node`: one schema node, resolved lazily and memoized. A `TypeSource` yields the
root node of a kind. Built-in kinds get theirs from our OpenAPI definitions (`openapi_source`);
a CustomResourceDefinition's structural schema is the same JSON-schema dialect with the same
extensions, so `register_schema(group, version, kind, schema)` is all the CRD code needs to call
for its custom resources to get managedFields with the right list semantics.
"""

from __future__ import annotations

import functools
import weakref
from typing import Any

from controlplane.apiserver import schema as _schema

MAP, LIST, SCALAR, UNTYPED = "map", "list", "scalar", "untyped"

# Fields a typed zero object has: upstream compares a create against the kind's Go zero value,
# where non-pointer structs exist (empty) and fields without `omitempty` exist (null), so
# adding content into them does not add the field itself (no "." for it in fieldsV1). The
# OpenAPI definitions mark the fields without omitempty as `required`; they do not say which
# structs are pointers, so these names are the non-pointer structs of the workload kinds.
# Custom resources are unstructured: their zero object is empty.
_VALUE_STRUCTS = frozenset({"metadata", "spec", "status", "template", "jobTemplate", "strategy",
                            "updateStrategy", "resources"})
# Key fields with a schema default that our v2 definitions do not carry (upstream's v3 does):
# an applied port without `protocol` names the same item as the stored one with TCP.
_KEY_DEFAULTS = {"protocol": "TCP"}


class Node:
    """One node of a schema. `kind` is MAP (struct or map), LIST, SCALAR or UNTYPED."""

    __slots__ = ("raw", "kind", "atomic", "set_list", "keys", "key_defaults", "_fields",
                 "_elem", "value_structs", "zero_fields", "_resolve")

    def __init__(self, raw: dict, resolve, value_structs: frozenset = frozenset()):
        self._resolve = resolve
        raw = resolve(raw)
        self.raw = raw
        self.value_structs = value_structs
        # the fields of this struct that its Go zero value has (see _VALUE_STRUCTS)
        self.zero_fields = value_structs | frozenset(raw.get("required") or ()) \
            if value_structs else frozenset()
        self._fields: dict[str, tuple[Node, bool]] = {}
        self._elem: Node | None = None
        self.keys: tuple[str, ...] = ()
        self.key_defaults: dict[str, Any] = {}
        self.atomic = False
        self.set_list = False
        t = raw.get("type")
        fmt = raw.get("format")
        if t == "array":
            self.kind = LIST
            lt = raw.get("x-kubernetes-list-type")
            if lt is None and raw.get("x-kubernetes-patch-strategy", "").startswith("merge"):
                key = raw.get("x-kubernetes-patch-merge-key")
                lt, self.keys = ("map", (key,)) if key else ("set", ())
            elif lt == "map":
                self.keys = tuple(raw.get("x-kubernetes-list-map-keys") or ())
            self.atomic = lt not in ("set", "map")
            self.set_list = lt == "set"
        elif t == "object" or "properties" in raw or "additionalProperties" in raw:
            if not raw.get("properties") and "additionalProperties" not in raw \
                    and not raw.get("x-kubernetes-map-type"):
                self.kind = UNTYPED  # free-form object (RawExtension, FieldsV1, unknown)
            else:
                self.kind = MAP
                self.atomic = raw.get("x-kubernetes-map-type") == "atomic"
        elif t in ("string", "integer", "number", "boolean") and fmt not in ("int-or-string",):
            self.kind = SCALAR
        else:
            self.kind = UNTYPED
        if self.kind == LIST and self.keys:
            item = resolve(raw.get("items") or {})
            props = item.get("properties") or {}
            for k in self.keys:
                d = (props.get(k) or {}).get("default", _KEY_DEFAULTS.get(k))
                if d is not None:
                    self.key_defaults[k] = d

    def field(self, name: str) -> tuple[Node, bool]:
        """(the node of `name`, whether it is a declared field of a struct)."""
        hit = self._fields.get(name)
        if hit is not None:
            return hit
        props = self.raw.get("properties")
        declared = bool(props) and name in props
        if declared:
            n = Node(props[name], self._resolve, self.value_structs)
        else:
            ap = self.raw.get("additionalProperties")
            n = Node(ap, self._resolve, self.value_structs) if isinstance(ap, dict) else DEDUCED
        if declared or len(self._fields) < 1000:  # map keys are unbounded: memoize only some
            self._fields[name] = (n, declared)
        return n, declared

    def elem(self) -> Node:
        if self._elem is None:
            items = self.raw.get("items")
            self._elem = Node(items, self._resolve, self.value_structs) if items else DEDUCED
        return self._elem

    def in_zero(self, name: str) -> bool:
        """Does this struct's Go zero value have field `name` (empty or null)?"""
        return name in self.zero_fields


def _no_ref(node: Any) -> dict:
    return node if isinstance(node, dict) else {}


DEDUCED = Node({}, _no_ref)


def kind_of(node: Node, value: Any) -> str:
    """The effective kind of `value` under `node`: an untyped node takes the value's shape."""
    if node.kind != UNTYPED:
        return node.kind
    if isinstance(value, dict):
        return MAP
    if isinstance(value, list):
        return LIST
    return SCALAR


def is_atomic(node: Node, kind: str) -> bool:
    """Replaced and owned whole? Deduced objects are granular, deduced lists atomic."""
    if node.kind == UNTYPED:
        return kind == LIST
    return node.atomic


# ---- sources ----

_SCHEMAS: dict[tuple[str, str, str], Node] = {}


# One Node per served custom resource version (apiextensions' CustomResource, rebuilt whenever its
# CRD changes: the old one, and its Node, go with it).
_CUSTOM: "weakref.WeakKeyDictionary[object, Node]" = weakref.WeakKeyDictionary()


def custom_root(custom) -> Node:
    """The root node of a custom resource's version: its CRD's openAPIV3Schema (`custom.schema`)."""
    n = _CUSTOM.get(custom)
    if n is None:
        n = _CUSTOM[custom] = Node(custom.schema, _no_ref)
    return n


def register_schema(group: str, version: str, kind: str, schema: dict | None) -> None:
    """A custom resource's structural schema (openAPIV3Schema); None forgets it."""
    key = (group, version, kind)
    if schema is None:
        _SCHEMAS.pop(key, None)
    else:
        _SCHEMAS[key] = Node(schema, _no_ref)


@functools.cache
def _definition_root(definition: str) -> Node:
    return Node(_schema.definitions().get(definition) or {}, _schema.resolve, _VALUE_STRUCTS)


def root(group: str, version: str, kind: str, definition: str) -> Node:
    """The root node of a kind: a registered schema (custom resources) first, then the OpenAPI
    definition of a built-in kind; a kind we know nothing of is untyped (deduced)."""
    n = _SCHEMAS.get((group, version, kind))
    if n is not None:
        return n
    if definition:
        return _definition_root(definition)
    return DEDUCED
