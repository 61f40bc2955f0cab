"""One served version of a custom resource: what the generic registry asks of it.

A `CustomResource` hangs off the ResourceType of `/apis/<group>/<version>/<plural>` (its
`custom` field) and answers, for that version:

- the strategy (CustomResourceStrategy): prune unknown fields, apply schema defaults, validate
  against the schema (values.py) and ObjectMeta; with a status subresource, the object's writes
  keep the old status, /status writes change only status, and `generation` moves when anything
  but metadata and status changes (upstream's customresource strategy);
- reading (`from_storage`): every version is stored under one key space in the storage
  version's apiVersion; with the `None` conversion a read through another version only rewrites
  apiVersion — then prunes and defaults with that version's schema, as upstream's decoder does;
- the scale subresource: an autoscaling/v1 Scale read from and written to the CRD's JSON paths
  (specReplicasPath, statusReplicasPath, labelSelectorPath);
- its Table (printer.py) and its OpenAPI definition (openapi.py).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from controlplane.apiserver import validation
from controlplane.apiserver.apiextensions import printer, structural, values
from controlplane.apiserver.errors import APIError, FieldError, bad_request, invalid
from controlplane.apiserver.selectors import FieldSelector, field_selector_terms, selector_string
from controlplane.apiserver.strategy import Strategy
from controlplane.storage.watchcache import WatchCache


@dataclass(frozen=True, eq=False)
class CustomResource:
    crd_name: str
    group: str
    version: str
    storage_version: str
    kind: str
    list_kind: str
    plural: str
    namespaced: bool
    schema: dict  # openAPIV3Schema of this version
    status: bool  # has the status subresource
    scale: dict | None  # subresources.scale of this version
    columns: tuple[dict, ...]  # additionalPrinterColumns
    # Reads must go through from_storage (other versions stored, or defaults to apply);
    # otherwise the stored JSON is served as it is (and its encoding memoized).
    converts: bool
    selectable: tuple[str, ...] = ()  # selectableFields, as field selector labels ("spec.color")
    warning: str = ""  # sent with every request to a deprecated version
    strategy: Any = field(default=None)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    # ---- reading ----

    def from_storage(self, obj: dict) -> dict:
        """The stored object as this version shows it (objects in the cache are shared: a copy)."""
        if not self.converts:
            return {**obj, "apiVersion": self.api_version}
        out = copy.deepcopy(obj)
        out["apiVersion"] = self.api_version
        structural.prune(out, self.schema)
        structural.default(out, self.schema)
        return out

    def to_storage(self, obj: Any) -> Any:
        if isinstance(obj, dict) and obj.get("apiVersion") == self.api_version:
            obj = dict(obj)
            obj["apiVersion"] = f"{self.group}/{self.storage_version}"
        return obj

    def list_types(self) -> dict[str, dict]:
        """Per-path x-kubernetes-list-type / list-map-keys / map-type of this version's schema
        (structural.list_types): what server-side apply merges lists and maps by."""
        return structural.list_types(self.schema)

    # ---- unknown fields (fieldValidation) ----

    def unknown_fields(self, obj: dict) -> list[str]:
        """What pruning would drop from obj: the fields `fieldValidation=Strict` refuses."""
        probe = copy.deepcopy(obj)
        return structural.prune(probe, self.schema)

    # ---- scale ----

    def scale_of(self, obj: dict) -> dict:
        sc = self.scale or {}
        md = obj.get("metadata") or {}
        status: dict = {"replicas": _get(obj, sc.get("statusReplicasPath", "")) or 0}
        sel = _get(obj, sc.get("labelSelectorPath", "")) if sc.get("labelSelectorPath") else None
        if isinstance(sel, str) and sel:
            status["selector"] = sel
        elif isinstance(sel, dict):
            status["selector"] = selector_string(sel)
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                                 "creationTimestamp") if k in md},
                "spec": {"replicas": _get(obj, sc.get("specReplicasPath", "")) or 0},
                "status": status}

    def set_replicas(self, obj: dict, replicas: int) -> None:
        _set(obj, (self.scale or {}).get("specReplicasPath", ".spec.replicas"), replicas)

    # ---- field selectors ----

    def field_selector(self, text: str | None) -> FieldSelector:
        """metadata.name, metadata.namespace and the version's selectableFields; anything else
        is refused as upstream's DefaultMetaV1FieldSelectorConversion refuses it."""
        if not text or not text.strip():
            return FieldSelector((), self.kind)
        terms = []
        for label, op, value in field_selector_terms(text):
            if label not in ("metadata.name", "metadata.namespace") and label not in self.selectable:
                raise bad_request(f'"{label}" is not a known field selector: only "metadata.name", '
                                  f'"metadata.namespace"')
            terms.append((label, "!=" if op == "!=" else "=", value))
        return _CustomFieldSelector(tuple(terms), self.kind)

    # ---- tables ----

    def table(self, objs: list[dict], list_meta: dict, include_object: str = "Metadata",
              headers: bool = True) -> dict:
        return printer.table(self.columns, objs, list_meta, include_object, headers)


@dataclass(frozen=True)
class _CustomFieldSelector(FieldSelector):
    def matches(self, obj: dict) -> bool:
        for label, op, value in self.terms:
            v = _get(obj, label)
            actual = "" if v is None else ("true" if v is True else "false" if v is False else str(v))
            if (actual == value) != (op == "="):
                return False
        return True


_MISSING = object()
_STEP = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def _at(obj: Any, path: str) -> Any:
    """The value at a field error's path ("spec.items[0].name"), or _MISSING."""
    cur = obj
    for m in _STEP.finditer(path):
        key, idx = m.group(1), m.group(2)
        if key is not None:
            if not isinstance(cur, dict) or key not in cur:
                return _MISSING
            cur = cur[key]
        else:
            i = int(idx)
            if not isinstance(cur, list) or i >= len(cur):
                return _MISSING
            cur = cur[i]
    return cur


def _unchanged(e: FieldError, new: dict, old: dict) -> bool:
    """Whether the value an error is about is the same in the old object. A missing required
    field or a duplicate item is about the object or list that holds it."""
    path = e.field
    if e.type in ("FieldValueRequired", "FieldValueDuplicate"):
        path = re.sub(r"(\.[^.\[\]]+|\[\d+\])$", "", path)
    before = _at(old, path)
    return before is not _MISSING and before == _at(new, path)


def _get(obj: dict, path: str):
    cur: Any = obj
    for part in [p for p in path.split(".") if p]:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _set(obj: dict, path: str, value) -> None:
    parts = [p for p in path.split(".") if p]
    cur = obj
    for part in parts[:-1]:
        if not isinstance(cur.get(part), dict):
            cur[part] = {}
        cur = cur[part]
    cur[parts[-1]] = value


class CustomResourceStrategy(Strategy):
    """upstream's customResourceStrategy (apiextensions-apiserver/pkg/registry/customresource)."""

    def __init__(self, rt, cr: CustomResource):
        super().__init__(rt)
        self.cr = cr
        self.status_split = cr.status
        # new object's id → the object it updates, from admit() to validate() (ratcheting)
        self._ratchet: dict[int, dict] = {}

    def canonicalize(self, obj: dict) -> None:
        structural.prune(obj, self.cr.schema)

    def prepare_for_create(self, obj: dict) -> None:
        if self.cr.status:
            obj.pop("status", None)  # set only through /status

    def generation_changed(self, new: dict, old: dict) -> bool:
        skip = ("metadata", "status") if self.cr.status else ("metadata",)
        return {k: v for k, v in new.items() if k not in skip} != \
            {k: v for k, v in old.items() if k not in skip}

    def default(self, obj: dict) -> None:
        structural.default(obj, self.cr.schema)

    def admit(self, obj: dict, old: dict | None, cache: WatchCache) -> None:
        if old is None:
            e = cache.get(f"/registry/customresourcedefinitions/{self.cr.crd_name}")
            if e is not None and (e.obj.get("metadata") or {}).get("deletionTimestamp"):
                raise APIError(405, "MethodNotAllowed", "create not allowed while custom resource "
                               "definition is terminating", {})
        else:
            # objects._merge_update calls validate(obj) right after admit(obj, old), nothing
            # in between that awaits or raises: the old object waits there for it, keyed by obj.
            self._ratchet[id(obj)] = old

    def validate(self, obj: dict) -> list[FieldError]:
        old = self._ratchet.pop(id(obj), None)
        errs = validation.metadata("CustomResource", obj, self.rt.namespaced)
        schema_errs = values.validate(obj, self.cr.schema)
        if old is not None:
            # Validation ratcheting (upstream's CRDValidationRatcheting, on since 1.30): an
            # update may keep a value that a tightened schema now refuses, if it leaves it as
            # it was; only what the update changes must be valid.
            schema_errs = [e for e in schema_errs if not _unchanged(e, obj, old)]
        errs += schema_errs
        if self.cr.scale:
            errs += self._scale_paths(obj)
        return errs

    def _scale_paths(self, obj: dict) -> list[FieldError]:
        errs: list[FieldError] = []
        for key in ("specReplicasPath", "statusReplicasPath"):
            path = self.cr.scale.get(key) or ""
            v = _get(obj, path)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                errs.append(invalid(path.lstrip("."), v, "should be a non-negative integer"))
        return errs

    def validate_update(self, new: dict, old: dict) -> list[FieldError]:
        return []
