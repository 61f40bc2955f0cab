"""Tables for custom resources: `kubectl get crontabs` shows the CRD's additionalPrinterColumns.

Upstream's tableconvertor: the first column is always Name; then the CRD's columns, each a
JSONPath evaluated on the object (the first result is the cell; none gives an empty cell, which
kubectl prints as <none>). A CRD without columns gets Name and Age. Cells of type `date` are
sent as a human duration ("5m"), as the server prints creationTimestamp for built-in kinds.

JSONPath here is the subset CRDs use: `.a.b`, `.a[0]`, `.a[*].b`, `.a['key.with.dots']` and
filters `[?(@.type=="Ready")]`.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import re
from typing import Any

from controlplane.apiserver import tables

_NAME_COL = {"name": "Name", "type": "string", "format": "name",
             "description": "Name must be unique within a namespace. Is required when creating "
                            "resources, although some resources may allow a client to request the "
                            "generation of an appropriate name automatically. Name is primarily "
                            "intended for creation idempotence and configuration definition. "
                            "Cannot be updated. More info: https://kubernetes.io/docs/concepts/"
                            "overview/working-with-objects/names#names",
             "priority": 0}
DEFAULT_COLUMNS = ({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp",
                    "description": "CreationTimestamp is a timestamp representing the server time "
                                   "when this object was created."},)


def column_definitions(columns: tuple[dict, ...]) -> list[dict]:
    out = [dict(_NAME_COL)]
    for c in columns or DEFAULT_COLUMNS:
        out.append({"name": c.get("name", ""), "type": c.get("type", "string"),
                    "format": c.get("format", ""), "description": c.get("description", ""),
                    "priority": c.get("priority", 0) or 0})
    return out


def _age(value: str, now: _dt.datetime) -> str:
    try:  # RFC 3339 as the server writes it; fromisoformat is C, strptime would dominate a LIST
        t = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return tables.human_duration((now - t).total_seconds())


def cells(columns: tuple[dict, ...], obj: dict, now: _dt.datetime | None = None) -> list:
    now = now or _dt.datetime.now(_dt.timezone.utc)
    out: list[Any] = [(obj.get("metadata") or {}).get("name", "")]
    for c in columns or DEFAULT_COLUMNS:
        results = find(obj, c.get("jsonPath", ""))
        if not results:
            out.append(None)
            continue
        v = results[0]
        typ = c.get("type")
        if typ == "date" and isinstance(v, str):
            out.append(_age(v, now))
        elif isinstance(v, (dict, list)):
            out.append(json.dumps(v, separators=(",", ":")))
        elif typ == "string" and not isinstance(v, str):
            out.append(json.dumps(v) if not isinstance(v, bool) else ("true" if v else "false"))
        else:
            out.append(v)
    return out


def table(columns: tuple[dict, ...], objs: list[dict], list_meta: dict,
          include_object: str = "Metadata", headers: bool = True) -> dict:
    rows = []
    now = _dt.datetime.now(_dt.timezone.utc)
    for o in objs:
        r: dict[str, Any] = {"cells": cells(columns, o, now)}
        if include_object == "Object":
            r["object"] = o
        elif include_object != "None":
            r["object"] = tables.partial_metadata(o)
        rows.append(r)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "columnDefinitions": column_definitions(columns) if headers else [], "rows": rows}


# ---- the JSONPath subset ----

_TOKEN = re.compile(r"""\.(?P<name>[A-Za-z0-9_$-]+)|\[(?P<index>-?\d+|\*)\]|\[['"](?P<key>[^'"]+)['"]\]|"""
                    r"""\[\?\(@\.(?P<fpath>[A-Za-z0-9_.-]+)\s*(?P<op>==|!=)\s*['"]?(?P<fval>[^'")]*)['"]?\)\]""")


@functools.lru_cache(maxsize=256)  # a column's path, parsed once for every row
def parse(path: str) -> tuple[tuple[str, Any], ...]:
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    if path.startswith("$"):
        path = path[1:]
    steps: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if m is None:
            raise ValueError(f"unrecognized JSONPath at {path[pos:]!r}")
        if m.group("name") is not None:
            steps.append(("field", m.group("name")))
        elif m.group("key") is not None:
            steps.append(("field", m.group("key")))
        elif m.group("index") is not None:
            idx = m.group("index")
            steps.append(("all", None) if idx == "*" else ("index", int(idx)))
        else:
            steps.append(("filter", (m.group("fpath").split("."), m.group("op"), m.group("fval"))))
        pos = m.end()
    return tuple(steps)


def find(obj: Any, path: str) -> list:
    try:
        steps = parse(path)
    except ValueError:
        return []
    cur = [obj]
    for kind, arg in steps:
        nxt = []
        for v in cur:
            if kind == "field":
                if isinstance(v, dict) and arg in v:
                    nxt.append(v[arg])
                elif isinstance(v, list):  # .a.b over a list applies to every item
                    nxt.extend(x[arg] for x in v if isinstance(x, dict) and arg in x)
            elif kind == "index" and isinstance(v, list):
                if -len(v) <= arg < len(v):
                    nxt.append(v[arg])
            elif kind == "all":
                if isinstance(v, list):
                    nxt.extend(v)
                elif isinstance(v, dict):
                    nxt.extend(v.values())
            elif kind == "filter" and isinstance(v, list):
                fpath, op, fval = arg
                for item in v:
                    x: Any = item
                    for p in fpath:
                        x = x.get(p) if isinstance(x, dict) else None
                    s = x if isinstance(x, str) else json.dumps(x) if x is not None else None
                    if (s == fval) == (op == "=="):
                        nxt.append(item)
        cur = nxt
    return cur
