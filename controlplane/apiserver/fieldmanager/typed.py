"""Objects walked with their schema: the field set of an object, the difference of two objects,
the merge of an applied configuration into a live object, and the removal of fields.

These are structured-merge-diff's typed walkers (typed/tofieldset.go, compare.go, merge.go,
remove.go) on plain JSON values. Two rules run through all of them:

- Atomic values (scalars, atomic lists and maps, deduced lists) are leaves: owned, compared and
  replaced whole. Granular maps are walked field by field; set and map lists item by item, an
  item named by its value (`v:`) or its key fields (`k:`).
- An empty map or list is a leaf too ("empty promotes to leaf"): `resources: {}` is owned.

`MISSING` stands for an absent field, distinct from an explicit null.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.fieldmanager import fieldpath as fp
from controlplane.apiserver.fieldmanager.typeinfo import LIST, MAP, UNTYPED, Node, is_atomic, kind_of

Path = fp.Path
MISSING: Any = object()


class SchemaMismatch(Exception):
    """A value does not fit its list's shape (an item without its key fields, a duplicate)."""


def item_element(node: Node, item: Any, path: Path = ()) -> str:
    """The path element of a list item: keyed (`k:`) or by value (`v:`)."""
    if len(node.keys) == 1 and isinstance(item, dict) and node.keys[0] in item:
        return fp.key1(node.keys[0], item[node.keys[0]])  # the common case, kept short
    if node.keys:
        if not isinstance(item, dict):
            raise SchemaMismatch(f"{fp.to_string(path)}: associative list with keys may not "
                                 f"have non-map elements")
        k = {}
        for name in node.keys:
            if name in item:
                k[name] = item[name]
            elif name in node.key_defaults:
                k[name] = node.key_defaults[name]
        if not k:
            raise SchemaMismatch(f"{fp.to_string(path)}: associative list with keys has an "
                                 f"element that omits all key fields {_go_list(node.keys)}")
        return fp.key(k)
    if isinstance(item, (dict, list)):
        raise SchemaMismatch(f"{fp.to_string(path)}: associative list without keys has an "
                             f"element that is a map type")
    return fp.value(item)


def _go_list(keys) -> str:
    return "[" + " ".join(f'"{k}"' for k in keys) + "]"  # Go's %q of a []string


def _is_leaf(node: Node, kind: str, a: Any, b: Any = MISSING) -> bool:
    if kind not in (MAP, LIST) or is_atomic(node, kind):
        return True
    return not a and not b  # empty (or absent) on both sides


# ---- field sets (ToFieldSet) ----

def field_set(node: Node, obj: Any, strict: bool = False) -> set[Path]:
    """The paths of `obj`'s fields. `strict`: an applied configuration, where a list item
    named twice is an error (a live object may have such duplicates; upstream allows them)."""
    out: set[Path] = set()
    _tfs(node, obj, (), out, strict)
    return out


def _tfs(node: Node, v: Any, path: Path, out: set[Path], strict: bool) -> None:
    kind = kind_of(node, v)
    if kind == MAP:
        if is_atomic(node, kind):
            out.add(path)
            return
        if not isinstance(v, dict):
            return
        for k, val in v.items():
            child, declared = node.field(k)
            p = path + ("f:" + k,)
            _tfs(child, val, p, out, strict)
            if val is None or val == {} or not declared:
                out.add(p)
    elif kind == LIST:
        if is_atomic(node, kind):
            out.add(path)
            return
        if not isinstance(v, list):
            return
        elem = node.elem()
        seen: set[str] = set()
        for item in v:
            pe = item_element(node, item, path)
            p = path + (pe,)
            if pe in seen:
                if strict:
                    what = "key" if pe[0] == "k" else "value"
                    raise SchemaMismatch(f"{fp.to_string(path)}: duplicate entries for {what} "
                                         f"{fp.to_string((pe,))}")
                continue
            seen.add(pe)
            _tfs(elem, item, p, out, strict)
            out.add(p)
    else:
        out.add(path)


# ---- comparison (Compare) ----

class Comparison:
    __slots__ = ("added", "modified", "removed")

    def __init__(self):
        self.added: set[Path] = set()
        self.modified: set[Path] = set()
        self.removed: set[Path] = set()

    def same(self) -> bool:
        return not (self.added or self.modified or self.removed)

    def exclude(self, prefixes) -> Comparison:
        self.added = fp.exclude(self.added, prefixes)
        self.modified = fp.exclude(self.modified, prefixes)
        self.removed = fp.exclude(self.removed, prefixes)
        return self


def compare(node: Node, lhs: Any, rhs: Any) -> Comparison:
    c = Comparison()
    _cmp(node, lhs, rhs, (), c, True)  # the root exists on both sides
    return c


def _added(node: Node, v: Any, path: Path, out: set, exists: bool) -> None:
    """_cmp with nothing on the left: all of `v` is added. `exists`: the left side is a typed
    object that has this field as its zero value (see typeinfo._VALUE_STRUCTS); only fields of
    a struct that exists there exist, nothing inside a new list item does."""
    kind = kind_of(node, v)
    if kind == MAP and isinstance(v, dict) and v and not is_atomic(node, kind):
        for k, val in v.items():
            child, declared = node.field(k)
            _added(child, val, path + ("f:" + k,), out, exists and declared and node.in_zero(k))
        if not exists:
            out.add(path)
    elif kind == LIST and isinstance(v, list) and v and not is_atomic(node, kind):
        elem = node.elem()
        seen = set()
        for item in v:
            pe = item_element(node, item, path)
            if pe not in seen:
                seen.add(pe)
                _added(elem, item, path + (pe,), out, False)
        if not exists:
            out.add(path)
    elif not (exists and (v == {} or v is None)):
        out.add(path)


def added_tree(node: Node, v: Any, exists: bool = True) -> dict | None:
    """The fieldsV1 tree of what `_added(node, v, ...)` finds, built directly: a create's
    ownership is all of the new object, and building the tree without the set of paths in
    between keeps a create's cost down (every pod and event the cluster makes goes through
    here). Sorted as upstream serializes it."""
    kind = node.kind if node.kind != UNTYPED else kind_of(node, v)
    if kind == MAP and v and isinstance(v, dict) and not is_atomic(node, kind):
        out: dict = {} if exists else {".": {}}
        zero = node.zero_fields if exists else ()
        for k in sorted(v):
            child, declared = node.field(k)
            sub = added_tree(child, v[k], declared and k in zero)
            if sub is not None:
                out["f:" + k] = sub
        return out if len(out) > 1 or "." not in out else {}
    if kind == LIST and v and isinstance(v, list) and not is_atomic(node, kind):
        elem = node.elem()
        items = {}
        for item in v:
            pe = item_element(node, item)
            if pe not in items:
                items[pe] = added_tree(elem, item, False)
        out = {} if exists else {".": {}}
        for pe in sorted(items, key=fp.element_order):
            out[pe] = items[pe]
        return out
    if exists and (v == {} or v is None):
        return None  # the zero value had it just so
    return {}


def _cmp(node: Node, l: Any, r: Any, path: Path, c: Comparison, in_zero: bool) -> None:
    """Compare l and r (either may be MISSING). `in_zero`: the typed objects upstream compares
    would have this field even when absent here (a Go zero value), so it is never added or
    removed itself, only what is in it."""
    if l is MISSING and r is not MISSING:
        _added(node, r, path, c.added, in_zero)
        return
    if r is MISSING and l is not MISSING:
        _added(node, l, path, c.removed, in_zero)  # the mirror image: all removed
        return
    kind = kind_of(node, r)  # both present from here on
    if kind_of(node, l) != kind:
        c.modified.add(path)  # changed shape: compared as one value
        return
    if _is_leaf(node, kind, l, r) or (kind == MAP and not (isinstance(l, dict) and
                                                           isinstance(r, dict))):
        if l != r:
            c.modified.add(path)
        return
    if kind == MAP:
        keys = l.keys() if l.keys() == r.keys() else l.keys() | r.keys()
        for k in keys:
            av, bv = l.get(k, MISSING), r.get(k, MISSING)
            if av is bv:
                continue  # the same object (merge shares what it did not touch)
            child, declared = node.field(k)
            _cmp(child, av, bv, path + ("f:" + k,), c, declared and node.in_zero(k))
    else:
        _cmp_list(node, l, r, path, c)


def _cmp_list(node: Node, a: list, b: list, path: Path, c: Comparison) -> None:
    if not isinstance(a, list) or not isinstance(b, list):
        c.modified.add(path)
        return
    elem = node.elem()
    left: dict[str, list] = {}
    order: list[str] = []
    for item in a:
        pe = item_element(node, item, path)
        if pe not in left:
            order.append(pe)
        left.setdefault(pe, []).append(item)
    right: dict[str, list] = {}
    for item in b:
        pe = item_element(node, item, path)
        if pe not in right and pe not in left:
            order.append(pe)
        right.setdefault(pe, []).append(item)
    for pe in order:
        ll, rl = left.get(pe, []), right.get(pe, [])
        p = path + (pe,)
        if len(ll) <= 1 and len(rl) <= 1:
            _cmp(elem, ll[0] if ll else MISSING, rl[0] if rl else MISSING, p, c, False)
            # (an item on one side only is wholly added or removed, zero structs and all)
        elif len(ll) >= 2 and len(rl) >= 2:
            if ll != rl:
                c.modified.add(p)
        elif len(ll) >= 2:
            c.removed.add(p)
        else:
            c.added.add(p)


# ---- merge (Merge): the applied configuration over the live object ----

def merge(node: Node, live: Any, config: Any) -> Any:
    return _merge(node, live, config, ())


def _merge(node: Node, l: Any, r: Any, path: Path) -> Any:
    if r is MISSING:
        return l
    if l is MISSING:
        return r
    kind = kind_of(node, r)
    if kind_of(node, l) != kind or _is_leaf(node, kind, l, r):
        return r
    if kind == MAP:
        if not isinstance(l, dict) or not isinstance(r, dict):
            return r
        out = {}
        for k, lv in l.items():
            rv = r.get(k, MISSING)
            v = lv if rv is MISSING else _merge(node.field(k)[0], lv, rv, path + ("f:" + k,))
            if v is not None:
                out[k] = v
        for k, rv in r.items():
            if k not in l and rv is not None:
                out[k] = rv
        return out
    if not isinstance(l, list) or not isinstance(r, list):
        return r
    return _merge_list(node, l, r, path)


def _merge_list(node: Node, lhs: list, rhs: list, path: Path) -> list:
    """The order upstream gives a merged list (typed/merge.go visitListItems): the applied items
    in the applied order, live-only items kept where they stood relative to them."""
    elem = node.elem()
    r_pes = [item_element(node, x, path) for x in rhs]
    observed_r = {}
    for pe, x in zip(r_pes, rhs):
        if pe in observed_r:
            what = "key" if pe[0] == "k" else "value"
            raise SchemaMismatch(f"{fp.to_string(path)}: duplicate entries for {what} "
                                 f"{fp.to_string((pe,))}")
        observed_r[pe] = x
    l_pes = [item_element(node, x, path) for x in lhs]
    observed_l = {}
    for pe, x in zip(l_pes, lhs):
        observed_l[pe] = x if pe not in observed_l else None  # a duplicate merges as null
    shared = [pe for pe in r_pes if pe in observed_l]
    nxt = shared.pop(0) if shared else None
    merged_r: set[str] = set()
    out: list = []
    li = ri = 0
    while li < len(l_pes) or ri < len(r_pes):
        if li < len(l_pes) and ri < len(r_pes):
            pe = l_pes[li]
            if pe == r_pes[ri]:
                merged_r.add(pe)
                out.append(_merge(elem, observed_l[pe], observed_r[pe], path + (pe,)))
                li += 1
                ri += 1
                nxt = shared.pop(0) if shared else None
                continue
            if pe in observed_r and nxt is not None and nxt != pe:
                li += 1
                continue
        if li < len(l_pes):
            pe = l_pes[li]
            if pe not in observed_r:
                out.append(lhs[li])
                li += 1
                continue
            if pe in merged_r:
                li += 1
        if ri < len(r_pes):
            pe = r_pes[ri]
            merged_r.add(pe)
            lv = observed_l.get(pe, MISSING)
            out.append(_merge(elem, MISSING if lv is None else lv, observed_r[pe], path + (pe,)))
            ri += 1
            if nxt is not None and nxt == pe:
                nxt = shared.pop(0) if shared else None
    return out


# ---- removal (RemoveItems) and EnsureNamedFieldsAreMembers ----

def remove(node: Node, obj: Any, paths: set[Path]) -> Any:
    """`obj` without the fields and items in `paths` (each with everything under it)."""
    if not paths:
        return obj
    return _remove(node, obj, fp.trie(paths))


def _remove(node: Node, v: Any, trie: dict) -> Any:
    kind = kind_of(node, v)
    if kind == MAP and isinstance(v, dict) and not is_atomic(node, kind):
        out = {}
        for k, val in v.items():
            t = trie.get("f:" + k)
            if t is None:
                out[k] = val
            elif not t.get("."):
                out[k] = _remove(node.field(k)[0], val, t)
        return out
    if kind == LIST and isinstance(v, list) and not is_atomic(node, kind):
        out_l = []
        elem = node.elem()
        for item in v:
            t = trie.get(item_element(node, item))
            if t is None:
                out_l.append(item)
            elif not t.get("."):
                out_l.append(_remove(elem, item, t))
        return out_l
    return v


def ensure_named(node: Node, paths: set[Path]) -> set[Path]:
    """The set plus each struct field on the way to its members (upstream's
    EnsureNamedFieldsAreMembers): owning `.spec.replicas` also names `.spec`, but owning
    `.metadata.labels.app` does not name the map key's parent beyond `.metadata.labels`."""
    out = set(paths)
    seen: set[Path] = set()
    for p in paths:
        n = node
        for i, pe in enumerate(p[:-1]):
            prefix = p[:i + 1]
            if pe[0] == "f":
                child, declared = n.field(pe[2:])
                if declared and prefix not in seen:
                    out.add(prefix)
                n = child
            else:
                n = n.elem()
            seen.add(prefix)
    return out
