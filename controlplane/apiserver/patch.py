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
    """Upstream's StrategicMergeMapPatch (k8s.io/apimachinery/pkg/util/strategicpatch), with its
    ordering rules: in a merged list, items named by the patch come in the patch's order (or
    `$setElementOrder`'s), new ones ahead of the server's; server-only items keep their place
    relative to the patch items they stood beside."""
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    return _merge_map(copy.deepcopy(doc) if isinstance(doc, dict) else {}, copy.deepcopy(patch),
                      _schema.definitions().get(definition, {}))


def _strategy(field: dict) -> tuple[str, str]:
    """(strategy without retainKeys, merge key) of a field."""
    strategy, key = _schema.patch_meta(field)
    parts = [p for p in strategy.split(",") if p and p != "retainKeys"]
    return (parts[0] if parts else ""), key


def _merge_map(orig: dict, patch: dict, schema: dict) -> dict:
    """Merge `patch` into `orig`; both are private copies and may be changed."""
    if "$patch" in patch:
        directive = patch.pop("$patch")
        if directive == "replace":
            return patch
        if directive == "delete":
            return {}
        raise PatchError(f"Unknown patch type: {directive} in map: {patch}")
    if "$retainKeys" in patch:
        retain = patch.pop("$retainKeys")
        if not isinstance(retain, list):
            raise PatchError("invalid patch format of retainKeys")
        for k, v in patch.items():
            if v is not None and not k.startswith((_DELETE_PRIMITIVE, _ORDER)) and k not in retain:
                raise PatchError("doesn't match $retainKeys")
        for k in [k for k in orig if k not in retain]:
            del orig[k]
    for key in [k for k in patch if k.startswith(_ORDER)]:
        _set_element_order(orig, patch, key, schema)
    for k, v in patch.items():
        delete_list = k.startswith(_DELETE_PRIMITIVE)
        if delete_list:
            k = k[len(_DELETE_PRIMITIVE):]
        if v is None:
            orig.pop(k, None)
            continue
        field = _schema.child(schema, k)
        strategy, key = _strategy(field)
        cur = orig.get(k)
        if k not in orig or _kind(cur) != _kind(v):
            if delete_list:
                continue  # nothing to delete from
            # A new value: taken as given, once its own directives are resolved.
            if isinstance(v, dict):
                v = v if strategy == "replace" else _merge_map({}, v, _schema.resolve(field))
            elif isinstance(v, list):
                v = _merge_list_handler([], v, field, strategy, key, False)
            orig[k] = v
            continue
        if isinstance(v, dict):
            orig[k] = v if strategy == "replace" else _merge_map(cur, v, _schema.resolve(field))
        elif isinstance(v, list):
            orig[k] = _merge_list_handler(cur, v, field, strategy, key, delete_list)
        else:
            orig[k] = v
    return orig


def _kind(v: Any) -> str:
    return "map" if isinstance(v, dict) else "list" if isinstance(v, list) else "scalar"


def _items_schema(field: dict) -> dict:
    return _schema.resolve(_schema.resolve(field).get("items") or field.get("items"))


def _merge_list_handler(orig: list, patch: list, field: dict, strategy: str, key: str,
                        delete_list: bool) -> list:
    if strategy == "merge":
        return _merge_list(orig, patch, _items_schema(field), key, delete_list)
    for item in patch:  # replaced whole; a `$patch: replace` marker item is only a marker
        if isinstance(item, dict) and item.get("$patch") == "replace":
            return [x for x in patch if x is not item]
    return [x for x in patch if not (isinstance(x, dict) and "$patch" in x)]


def _merge_list(orig: list, patch: list, item_schema: dict, key: str, delete_list: bool) -> list:
    if not orig and not patch:
        return orig
    is_map = any(isinstance(x, dict) for x in orig + patch)
    if not is_map:
        if delete_list:
            return [x for x in orig if x not in patch]
        merged = _dedupe(orig + patch)
    else:
        if not key:
            raise PatchError("cannot merge lists without merge key for type map")
        orig, patch = _special_items(orig, patch, key)
        merged = list(orig)
        for item in patch:
            if key not in item:
                raise PatchError(f"map: {item} does not contain declared merge key: {key}")
            idx = _find(merged, item, key, True)
            if idx >= 0:
                merged[idx] = _merge_map(merged[idx], item, item_schema)
            else:
                merged.append(_merge_map({}, item, item_schema))
    in_patch, server_only = _partition(merged, patch, key, is_map)
    return _normalize(in_patch, server_only, patch, orig, key, is_map)


def _special_items(orig: list, patch: list, key: str) -> tuple[list, list]:
    """Apply `$patch: delete` items; `$patch: replace` makes the rest of the patch the list."""
    plain, replace = [], False
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"list items must be objects with a \"{key}\"")
        if "$patch" not in item:
            plain.append(item)
        elif item["$patch"] == "delete":
            if key not in item:
                raise PatchError(f"map: {item} does not contain declared merge key: {key}")
            orig = [x for x in orig if not (isinstance(x, dict) and x.get(key) == item[key])]
        elif item["$patch"] == "replace":
            replace = True
        elif item["$patch"] == "merge":
            raise PatchError("merging lists cannot yet be specified in the patch")
        else:
            raise PatchError(f"Unknown patch type: {item['$patch']} in map: {item}")
    if replace:
        return plain, []
    return orig, plain


def _dedupe(s: list) -> list:
    """Go's deduplicateScalars, order quirks included: a duplicate's slot takes the last item."""
    s = list(s)
    length = len(s) - 1
    i = 0
    while i < length:
        j = i + 1
        while j <= length:
            if s[i] == s[j]:
                s[j] = s[length]
                s = s[:length]
                length -= 1
                j -= 1
            j += 1
        i += 1
    return s


def _find(items: list, value: Any, key: str, is_map: bool) -> int:
    for i, x in enumerate(items):
        if is_map:
            if isinstance(x, dict) and isinstance(value, dict) and key in x and \
                    x.get(key) == value.get(key):
                return i
        elif x == value:
            return i
    return -1


def _partition(items: list, by: list, key: str, is_map: bool) -> tuple[list, list]:
    """Items present in `by` (by merge key for maps), and the rest."""
    present, rest = [], []
    for x in items:
        if is_map and (not isinstance(x, dict) or key not in x):
            raise PatchError(f"map: {x} does not contain declared merge key: {key}")
        (present if _find(by, x, key, is_map) >= 0 else rest).append(x)
    return present, rest


def _sort_by(items: list, order: list, key: str, is_map: bool) -> list:
    deleted = []
    if is_map:
        for x in items + order:
            if not isinstance(x, dict) or key not in x:
                raise PatchError(f"map: {x} does not contain declared merge key: {key}")
        deleted = [x for x in items if x.get("$patch") == "delete"]
        items = [x for x in items if x.get("$patch") != "delete"]

    def rank(x):
        i = _find(order, x, key, is_map)
        return i if i >= 0 else len(order)
    return sorted(items, key=rank) + deleted


def _normalize(in_patch: list, server_only: list, patch_order: list, server_order: list,
               key: str, is_map: bool) -> list:
    """Upstream's normalizeElementOrder: each part sorted by its own order, then server-only
    items inserted among the patch items where the live object had them."""
    right = _sort_by(in_patch, patch_order, key, is_map)
    left = _sort_by(server_only, server_order, key, is_map)
    out, i, j = [], 0, 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = _find(server_order, left[i], key, is_map)
            ri = _find(server_order, right[j], key, is_map)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _set_element_order(orig: dict, patch: dict, directive: str, schema: dict) -> None:
    """`$setElementOrder/<list>`: the order the client wants, with the patch list merged in
    (upstream's mergePatchIntoOriginal). Precedence: this order > the patch > the live list."""
    order = patch.pop(directive)
    if not isinstance(order, list):
        raise PatchError("invalid patch format of setElementOrder list")
    name = directive[len(_ORDER):]
    field = _schema.child(schema, name)
    strategy, key = _strategy(field)
    cur, new = orig.get(name), patch.get(name)
    if (cur is not None and not isinstance(cur, list)) or (new is not None and not isinstance(new, list)):
        raise PatchError(f"invalid value for {name}: expected a list")
    _check_order(new or [], order, key)
    if cur is not None and new is None:
        merged = cur
    elif cur is None and new is not None:
        merged = new
    elif cur is not None and new is not None:
        merged = _merge_list_handler(cur, new, field, strategy, key, False)
    else:
        return
    is_map = any(isinstance(x, dict) for x in (cur or []) + (new or []))
    if not (cur or new):
        return
    in_order, server_only = _partition(merged, order, key, is_map)
    orig[name] = _normalize(in_order, server_only, order, cur or [], key, is_map)
    patch.pop(name, None)


def _check_order(patch_list: list, order: list, key: str) -> None:
    """The patch list's items must appear in the same relative order in $setElementOrder."""
    if not patch_list or not order:
        return
    items = [x for x in patch_list if not (key and isinstance(x, dict) and x.get("$patch") == "delete")]
    pi = oi = 0
    while pi < len(items) and oi < len(order):
        if isinstance(items[pi], dict) and "$patch" in items[pi]:
            pi += 1
            continue
        a, b = items[pi], order[oi]
        if key:
            if not isinstance(a, dict) or not isinstance(b, dict) or key not in a or key not in b:
                raise PatchError(f"map does not contain declared merge key: {key}")
            same = a[key] == b[key]
        else:
            same = a == b
        if same:
            pi += 1
        oi += 1
    if pi < len(items) and oi >= len(order):
        raise PatchError(f"The order in patch list:\n{patch_list}\n doesn't match "
                         f"$setElementOrder list:\n{order}\n")
