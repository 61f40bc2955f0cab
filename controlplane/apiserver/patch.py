"""The three patch formats of PATCH requests, chosen by Content-Type.

- application/json-patch+json (RFC 6902): a list of operations (add, remove, replace, move, copy,
  test) on JSON-pointer paths. Exact, but paths into lists use indexes.
- application/merge-patch+json (RFC 7386): a partial object; `null` deletes a key; lists are
  replaced whole (so you cannot add one container without resending all).
- application/strategic-merge-patch+json (Kubernetes only): like a merge patch, but lists whose
  schema says `x-kubernetes-patch-strategy: merge` are merged item by item on their
  `x-kubernetes-patch-merge-key` (containers by `name`, ports by `containerPort`), and a few
  directives steer it:
      {"name": "c", "$patch": "delete"}            remove the list item with that key
      {"$patch": "replace", ...}                   replace this map (or list) instead of merging
      "$setElementOrder/containers": [{"name":..}] the order kubectl apply wants the items in
      "$deleteFromPrimitiveList/finalizers": [..]  remove values from a merged list of scalars
      "$retainKeys": [..]                          drop keys not listed (retainKeys strategy)
  kubectl apply computes a three-way strategic merge patch on the client and sends it here.

All functions return new values; inputs are not modified. Bad patches raise PatchError (→ 400/422).
"""

from __future__ import annotations

import copy
from typing import Any

from controlplane.apiserver import schema as _schema


class PatchError(Exception):
    """The patch cannot be applied; the message says where."""


# ---- RFC 6902 JSON patch ----

def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f'invalid JSON pointer "{path}": must start with "/"')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str], path: str) -> Any:
    for p in parts:
        if isinstance(doc, dict):
            if p not in doc:
                raise PatchError(f'path "{path}": key "{p}" not found')
            doc = doc[p]
        elif isinstance(doc, list):
            doc = doc[_index(doc, p, path)]
        else:
            raise PatchError(f'path "{path}": "{p}" is not inside an object or list')
    return doc


def _index(lst: list, p: str, path: str, allow_end: bool = False) -> int:
    if allow_end and p == "-":
        return len(lst)
    if not p.isdigit():
        raise PatchError(f'path "{path}": "{p}" is not a list index')
    i = int(p)
    if i > len(lst) or (i == len(lst) and not allow_end):
        raise PatchError(f'path "{path}": index {i} out of range')
    return i


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, allow_end=True), value)
    else:
        raise PatchError(f'path "{path}": parent is not an object or list')
    return doc


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'path "{path}": key "{last}" not found')
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, path))
    raise PatchError(f'path "{path}": parent is not an object or list')


def json_patch(doc: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"operation {i}: needs \"op\" and \"path\"")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f'operation {i} ({kind} {path}): missing "value"')
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            if _pointer(path):
                _walk(doc, _pointer(path), path)  # must exist
                _remove(doc, path)
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            src = op.get("from")
            if src is None:
                raise PatchError(f'operation {i} ({kind} {path}): missing "from"')
            value = copy.deepcopy(_walk(doc, _pointer(src), src))
            if kind == "move":
                _remove(doc, src)
            doc = _add(doc, path, value)
        elif kind == "test":
            if _walk(doc, _pointer(path), path) != op["value"]:
                raise PatchError(f'operation {i}: test of "{path}" failed')
        else:
            raise PatchError(f'operation {i}: unknown op "{kind}"')
    return doc


# ---- RFC 7386 JSON merge patch ----

def merge_patch(doc: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# ---- strategic merge patch ----

_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"


def strategic_merge_patch(doc: Any, patch: Any, definition: str) -> Any:
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    return _merge_map(doc if isinstance(doc, dict) else {}, patch,
                      _schema.definitions().get(definition, {}))


def _merge_map(orig: dict, patch: dict, schema: dict) -> dict:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None  # type: ignore[return-value]
    if directive is not None:
        raise PatchError(f'unknown $patch directive "{directive}"')
    out = copy.deepcopy(orig)
    retain = patch.get("$retainKeys")
    if retain is not None:
        out = {k: v for k, v in out.items() if k in retain}
    for k, v in patch.items():
        if k in ("$retainKeys",) or k.startswith(_ORDER) or k.startswith(_DELETE_PRIMITIVE):
            continue
        field = _schema.child(schema, k)
        if v is None:
            out.pop(k, None)
            continue
        cur = out.get(k)
        if isinstance(v, dict):
            merged = _merge_map(cur if isinstance(cur, dict) else {}, v, _schema.resolve(field))
            if merged is None:
                out.pop(k, None)
            else:
                out[k] = merged
        elif isinstance(v, list):
            out[k] = _merge_list(cur if isinstance(cur, list) else [], v, field, k)
        else:
            out[k] = v
    for k, values in patch.items():
        if k.startswith(_DELETE_PRIMITIVE):
            name = k[len(_DELETE_PRIMITIVE):]
            if isinstance(out.get(name), list):
                out[name] = [x for x in out[name] if x not in values]
    for k, order in patch.items():
        if k.startswith(_ORDER):
            name = k[len(_ORDER):]
            if isinstance(out.get(name), list):
                out[name] = _reorder(out[name], order, _schema.patch_meta(_schema.child(schema, name))[1])
    return out


def _merge_list(orig: list, patch: list, field: dict, name: str) -> list:
    strategy, key = _schema.patch_meta(field)
    if "merge" not in strategy.split(","):
        for item in patch:
            if isinstance(item, dict) and item.get("$patch") == "replace":
                return [x for x in patch if x is not item]
        return copy.deepcopy([x for x in patch if not (isinstance(x, dict) and "$patch" in x)])
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return copy.deepcopy([x for x in patch if not (isinstance(x, dict) and "$patch" in x)])
    if not key:  # merged list of scalars (e.g. finalizers): union, keeping order
        out = copy.deepcopy(orig)
        for x in patch:
            if x not in out:
                out.append(copy.deepcopy(x))
        return out
    item_schema = _schema.resolve(_schema.resolve(field).get("items") or field.get("items"))
    out = copy.deepcopy(orig)
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"{name}: list items must be objects with a \"{key}\"")
        if key not in item:
            raise PatchError(f'{name}: map: {item} does not contain declared merge key: {key}')
        idx = next((i for i, x in enumerate(out) if isinstance(x, dict) and x.get(key) == item[key]),
                   None)
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            out.append(_merge_map({}, item, item_schema))
        else:
            out[idx] = _merge_map(out[idx], item, item_schema)
    return out


def _reorder(items: list, order: list, key: str) -> list:
    """Put items in the order of `order` (values, or maps holding the merge key); items not in
    the order keep their relative position after the ordered ones."""
    ident = (lambda x: x.get(key) if isinstance(x, dict) else x) if key else (lambda x: x)
    wanted = [ident(o) if isinstance(o, dict) else o for o in order]
    rank = {w: i for i, w in enumerate(wanted) if isinstance(w, (str, int, float, bool))}
    return sorted(items, key=lambda x: rank.get(ident(x), len(rank)))
