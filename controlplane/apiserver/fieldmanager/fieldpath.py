"""Field paths and sets of them, and their wire form `fieldsV1`.

A path names one field of an object: a tuple of path elements, each written the way FieldsV1
writes them (structured-merge-diff's fieldpath/serialize-pe.go):

    f:<name>            a field of a struct or a key of a map          f:spec, f:replicas
    k:<json object>     the item of a keyed list with these key fields  k:{"name":"nginx"}
    v:<json value>      the item of a set (a list of scalars)           v:"example.com/finalizer"
    i:<index>           an item of a list by position (rare)            i:0

A set of paths is a plain Python set of these tuples. Its wire form is a tree: each element is a
key, a path that ends at a node is marked with `.` when the node also has children, and a leaf
is `{}`:

    {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}
        = {(f:metadata, f:labels), (f:metadata, f:labels, f:app)}

`f:metadata` itself is not in that set: it is only on the way to what is.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

Path = tuple[str, ...]

_RANK = {"f": 0, "k": 1, "v": 2, "i": 3}  # upstream's PathElement order: field, key, value, index


def field(name: str) -> str:
    return "f:" + name


# One encoder, made once: json.dumps with options builds a new encoder on every call, and a
# 50-container Deployment names a few hundred list items per apply.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode


def key(fields: dict[str, Any]) -> str:
    if len(fields) == 1:
        (k, v), = fields.items()
        return key1(k, v)
    return "k:" + _encode(fields)


def key1(name: str, v: Any) -> str:
    """key({name: v}) without building the dict."""
    return 'k:{' + _encode(name) + ":" + _encode(v) + "}"


def value(v: Any) -> str:
    return "v:" + _encode(v)


def index(i: int) -> str:
    return f"i:{i}"


def element_order(pe: str):
    """Sort key of path elements: upstream's order (fields, keys, values, indexes)."""
    return (_RANK.get(pe[0], 4), int(pe[2:]) if pe[0] == "i" else pe[2:])


_order = element_order


def trie(paths: Iterable[Path]) -> dict:
    """The set as a tree of path elements, "." marking where a path ends (FieldsV1's shape)."""
    tree: dict = {}
    for p in paths:
        node = tree
        for pe in p:
            node = node.setdefault(pe, {})
        node["."] = True
    return tree


def to_fields_v1(paths: Iterable[Path]) -> dict:
    """The FieldsV1 tree of a set, keys in upstream's order."""
    return _emit(trie(paths))


def _emit(node: dict) -> dict:
    member = node.pop(".", False)
    if not node:
        return {}
    out: dict = {".": {}} if member else {}
    for pe in sorted(node, key=_order):
        out[pe] = _emit(node[pe])
    return out


def without(tree: dict, prefixes: Iterable[Path]) -> dict:
    """A fieldsV1 tree without what is at or under `prefixes`; a node left with nothing under
    it is dropped, or becomes a leaf if it was a member itself."""
    for p in prefixes:
        _cut(tree, p)
    return tree


def _cut(node: dict, p: Path) -> bool:
    """Remove p under node; True if node is now empty of content."""
    head = p[0]
    if head not in node:
        return False
    if len(p) == 1:
        del node[head]
    else:
        child = node[head]
        if _cut(child, p[1:]):
            del node[head]
        elif list(child) == ["."]:
            node[head] = {}
    return not node


def from_fields_v1(tree: Any) -> set[Path]:
    """The set of a FieldsV1 tree; raises ValueError when it is not one."""
    out: set[Path] = set()
    if not isinstance(tree, dict):
        raise ValueError("fieldsV1 must be an object")
    _parse(tree, (), out)
    return out


def _parse(node: dict, prefix: Path, out: set[Path]) -> None:
    for pe, child in node.items():
        if pe == ".":
            out.add(prefix)
            continue
        if len(pe) < 2 or pe[1] != ":" or pe[0] not in _RANK or not isinstance(child, dict):
            raise ValueError(f"invalid path element {pe!r}")
        p = prefix + (pe,)
        if child:
            _parse(child, p, out)
        else:
            out.add(p)


def to_string(p: Path) -> str:
    """A path as messages print it (fieldpath.Path.String): .spec.containers[name="c"].image"""
    parts = []
    for pe in p:
        kind, rest = pe[0], pe[2:]
        if kind == "f":
            parts.append("." + rest)
        elif kind == "k":
            fields = json.loads(rest)
            parts.append("[" + ",".join(f"{k}={json.dumps(v, separators=(',', ':'))}"
                                         for k, v in fields.items()) + "]")
        elif kind == "v":
            parts.append("[=" + rest + "]")
        else:
            parts.append("[" + rest + "]")
    return "".join(parts)


def with_ancestors(paths: Iterable[Path]) -> set[Path]:
    """Every path and every prefix of it: what must stay for these paths to stay."""
    out: set[Path] = set()
    for p in paths:
        for i in range(len(p), 0, -1):
            q = p[:i]
            if q in out:
                break
            out.add(q)
    return out


def exclude(paths: set[Path], prefixes: Iterable[Path]) -> set[Path]:
    """`paths` without those at or under any of `prefixes` (a set's RecursiveDifference)."""
    if not paths:
        return paths
    wanted = frozenset(prefixes)
    lengths = sorted({len(x) for x in wanted})
    return {p for p in paths if not any(p[:n] in wanted for n in lengths)}
