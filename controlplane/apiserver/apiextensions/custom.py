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
from controlplane.apiserver.selectors import FieldSelector, selector_string
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
        out = dict(obj)
        out["apiVersion"] = self.api_version
        if self.schema_applies_on_read:
            out = copy.deepcopy(out)
            out["apiVersion"] = self.api_version
            structural.prune(out, self.schema)
            structural.default(out, self.schema)
        return out

    @property
    def schema_applies_on_read(self) -> bool:
        return self.converts

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
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            m = re.match(r"^([^!=]+)(==|!=|=)(.*)$", part)
            if not m:
                raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
            label, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
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

    def validate(self, obj: dict) -> list[FieldError]:
        errs = validation.metadata("CustomResource", obj, self.rt.namespaced)
        errs += values.validate(obj, self.cr.schema)
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
