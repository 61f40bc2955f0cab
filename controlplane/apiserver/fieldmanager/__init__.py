"""Field management and server-side apply: `metadata.managedFields` on every object.

Upstream's design (KEP 555; sigs.k8s.io/structured-merge-diff, k8s.io/apimachinery's
managedfields): every write records *who* set *which* fields. A plain write (create, PUT, the
three patch kinds) is an **Update**: its manager takes the fields it changed. A PATCH with
`Content-Type: application/apply-patch+yaml` is an **Apply**: the body is the manager's whole
intent for the object, merged into it field by field with the schema's list and map semantics;
fields another manager owns may not change without `force=true` (else 409 naming them), and
fields the manager stops applying are removed when nobody else owns them.

    typeinfo.py    the schema's list/map semantics per path (OpenAPI now, CRD schemas later)
    fieldpath.py   paths, sets, and the fieldsV1 wire form
    typed.py       field set, compare, merge, remove: the schema-guided walkers
    managers.py    managedFields entries, the Update and Apply rules, conflicts, the cap

This module is the apiserver's side: `track` runs inside the object store on every write, and
`apply` computes the applied object inside a PATCH's compare-and-swap round. Errors are the
apiserver's APIError (409 conflicts, 400 for a malformed apply).

kubectl's migration from client-side apply (`kubectl apply` then `kubectl apply --server-side`)
needs two things from the server: an Apply by manager `kubectl` keeps the last-applied
annotation in step with what it applies, and a conflict on a field whose value is the one in
that annotation is no conflict (lastappliedupdater.go / lastappliedmanager.go). kubectl itself
then moves the `kubectl-client-side-apply` fields into its Apply entry with a JSON patch of
managedFields, which `track` takes as given.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass

from controlplane.apiserver import meta
from controlplane.apiserver.errors import APIError, bad_request, invalid, invalid_object, required
from controlplane.apiserver.fieldmanager import fieldpath as fp
from controlplane.apiserver.fieldmanager import managers as _m
from controlplane.apiserver.fieldmanager import typed, typeinfo
from controlplane.apiserver.fieldmanager.typeinfo import register_schema
from controlplane.apiserver.resources import ResourceType

APPLY, UPDATE = _m.APPLY, _m.UPDATE
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
KUBECTL_SSA = "kubectl"  # kubectl apply --server-side's default manager
MAX_MANAGER_LENGTH = 128


@dataclass(frozen=True)
class Writer:
    """Who writes, and how: the fieldManager of one request."""
    manager: str
    operation: str = UPDATE
    api_version: str = ""
    subresource: str = ""
    force: bool = False


def manager_name(query_value: str | None, user_agent: str, options_kind: str) -> str:
    """The request's manager: `fieldManager`, else the user agent up to its first `/`
    (managerOrUserAgent). A bad fieldManager is 422 on the request's options kind."""
    if query_value:
        errs = []
        if len(query_value) > MAX_MANAGER_LENGTH:
            errs.append(invalid("fieldManager", query_value,
                                f"must have at most {MAX_MANAGER_LENGTH} bytes"))
        for i, ch in enumerate(query_value):
            if not ch.isprintable():
                errs.append(invalid("fieldManager", query_value,
                                    f"invalid character U+{ord(ch):04X} (at position {i})"))
                break
        if errs:
            raise invalid_object(options_kind, "meta.k8s.io", "", errs)
        return query_value
    return user_agent.split("/", 1)[0][:MAX_MANAGER_LENGTH]


def require_apply_manager(query_value: str | None) -> None:
    if not query_value:
        raise invalid_object("PatchOptions", "meta.k8s.io", "",
                             [required("fieldManager", "is required for apply patch")])


def _root(rt: ResourceType) -> typeinfo.Node:
    custom = getattr(rt, "custom", None)
    if custom is not None and custom.schema:
        # A custom resource: its CRD's structural schema says which lists are maps or sets.
        return typeinfo.custom_root(custom)
    return typeinfo.root(rt.group, rt.version, rt.kind, rt.definition)


def _ignored(rt: ResourceType, subresource: str) -> tuple:
    """Paths a write through this endpoint never owns: server-set metadata, and what the
    strategy resets (status through the main resource, spec through /status)."""
    if subresource == "status":  # our /status writes change nothing but status
        top = (_root(rt).raw.get("properties") or {}).keys() - {"status"}
        return _m.STRIPPED + tuple(("f:" + k,) for k in sorted(top))
    if "status" in rt.subresources:
        return _m.STRIPPED + (("f:status",),)
    return _m.STRIPPED


def _plain(obj: dict | None) -> dict:
    """The object as field management compares it: without its managedFields."""
    if not obj:
        return {}
    md = obj.get("metadata")
    if not isinstance(md, dict) or "managedFields" not in md:
        return obj
    return {**obj, "metadata": {k: v for k, v in md.items() if k != "managedFields"}}


def _unowned_dropped(obj: dict, ignored: tuple) -> dict:
    """`obj` without the fields no one owns (`ignored`: paths one or two fields deep), by
    shallow copies: cheaper than cutting them out of the ownership tree afterwards."""
    top = {p[0][2:] for p in ignored if len(p) == 1}
    meta_ = {p[1][2:] for p in ignored if len(p) == 2 and p[0] == "f:metadata"}
    out = {k: v for k, v in obj.items() if k not in top}
    md = out.get("metadata")
    if isinstance(md, dict):
        out["metadata"] = {k: v for k, v in md.items() if k not in meta_ and k != "managedFields"}
    return out


def copy_object(obj: dict) -> dict:
    """A deep copy of a stored object that shares its managedFields. They are many small dicts
    (costly to copy on every write) and are never changed in place: every write that changes
    ownership replaces the list (`track`, `apply`), and the patch functions copy what they
    patch."""
    md = obj.get("metadata")
    if not isinstance(md, dict) or "managedFields" not in md:
        return copy.deepcopy(obj)
    mf = md["managedFields"]
    out = copy.deepcopy({**obj, "metadata": {k: v for k, v in md.items() if k != "managedFields"}})
    out["metadata"]["managedFields"] = mf
    return out


def track(rt: ResourceType, old: dict | None, new: dict, writer: Writer | None) -> None:
    """Set `new`'s managedFields for a write of `old` (None: a create) into `new`.

    `new` may carry managedFields of its own (a client that edits them, as kubectl's
    client-side → server-side migration does); they replace the stored ones unless empty or
    invalid. An Apply's managedFields were computed by `apply` and are kept as they are; a
    write with no writer (the server's own) keeps the stored ones."""
    md = new["metadata"]
    given = md.pop("managedFields", None)
    old_entries = (old or {}).get("metadata", {}).get("managedFields")
    if writer is None:
        if old_entries:
            md["managedFields"] = old_entries
        return
    if writer.operation == APPLY:
        if given:
            md["managedFields"] = given
        return
    managers = None if writer.subresource else _m.decode(given)
    if managers is None:
        managers = _m.decode(old_entries) or {}
    if old is None and not managers:  # a plain create: the creator owns all there is
        tree = typed.added_tree(_root(rt), _unowned_dropped(new, _ignored(rt, writer.subresource)))
        if tree:
            md["managedFields"] = [{"manager": writer.manager, "operation": UPDATE,
                                    "apiVersion": writer.api_version or rt.api_version,
                                    "time": meta.now(), "fieldsType": "FieldsV1",
                                    "fieldsV1": tree}]
        return
    ident = _m.identity(writer.manager, UPDATE, writer.api_version or rt.api_version,
                        writer.subresource)
    try:
        _m.update(_root(rt), _plain(old), _plain(new), managers, ident,
                  writer.api_version or rt.api_version, meta.now(),
                  _ignored(rt, writer.subresource))
    except typed.SchemaMismatch:
        # The object is not what its schema says (validation reports that on its own);
        # ownership stays as it was rather than failing the write here.
        if old_entries:
            md["managedFields"] = old_entries
        return
    _m.cap(managers, rt.api_version)
    entries = _m.encode(managers)
    if entries:
        md["managedFields"] = entries


def check_config(rt: ResourceType, config, name: str, namespace: str | None = None) -> None:
    """What an applied configuration must be before anything is merged (400s as upstream)."""
    if not isinstance(config, dict):
        raise bad_request(f"{rt.kind} in version \"{rt.version}\" cannot be handled as a "
                          f"{rt.kind}: the applied configuration must be an object")
    if not config.get("kind"):
        raise bad_request(f"Object 'Kind' is missing in '{json.dumps(config)[:200]}'")
    if config.get("apiVersion") != rt.api_version or config.get("kind") != rt.kind:
        raise bad_request(f"the API version in the data ({config.get('apiVersion')}) does not "
                          f"match the expected API version ({rt.api_version})")
    md = config.get("metadata")
    if not isinstance(md, dict):
        raise bad_request("metadata: expected an object")
    if md.get("managedFields") is not None:
        raise bad_request("metadata.managedFields must be nil")
    if rt.namespaced and md.get("namespace") and namespace and md["namespace"] != namespace:
        raise bad_request("the namespace of the provided object does not match the namespace "
                          "sent on the request")
    if md.get("name") and md["name"] != name:
        raise bad_request(f"the name of the object ({md['name']}) does not match the name on "
                          f"the URL ({name})")


def apply(rt: ResourceType, live: dict | None, config: dict, writer: Writer) -> dict:
    """The object after `writer` applies `config` to `live` (None: absent), with its
    managedFields. Raises APIError 409 on conflicts (unless forced)."""
    node = _root(rt)
    live_v = _plain(live)
    entries = (live or {}).get("metadata", {}).get("managedFields")
    ident = _m.identity(writer.manager, APPLY, "", writer.subresource)
    ignored = _ignored(rt, writer.subresource)

    def attempt(force: bool):
        managers = _m.decode(entries) or {}
        merged = _m.apply(node, live_v, config, managers, ident, rt.api_version, force, ignored)
        return merged, managers

    try:
        try:
            merged, managers = attempt(writer.force)
        except _m.Conflicts as c:
            rest = _not_allowed_by_last_applied(node, live_v, c.conflicts) \
                if writer.manager == KUBECTL_SSA else c.conflicts
            if rest:
                raise _m.conflict_error(rest) from None
            merged, managers = attempt(True)
    except typed.SchemaMismatch as e:
        # Upstream's words and code for an applied object its schema cannot type.
        md = config.get("metadata") or {}
        where = "/".join(x for x in (md.get("namespace"), md.get("name")) if x)
        raise APIError(500, "InternalError", f"failed to create typed patch object ({where}; "
                       f"{rt.api_version}, Kind={rt.kind}): {e}") from None
    if merged != live_v or managers[ident].time is None:
        managers[ident].time = meta.now()
    if writer.manager == KUBECTL_SSA:
        _sync_last_applied(merged, config)
    _m.cap(managers, rt.api_version)
    md = merged.setdefault("metadata", {}) if isinstance(merged, dict) else {}
    if merged is live_v or md is (live_v or {}).get("metadata"):
        merged = {**merged, "metadata": dict(md)}
        md = merged["metadata"]
    entries_out = _m.encode(managers)
    if entries_out:
        md["managedFields"] = entries_out
    return merged


def _not_allowed_by_last_applied(node, live_v: dict, conflicts: dict) -> dict:
    """Conflicts that the client-side apply annotation does not excuse: a field in the
    annotation whose live value is still the annotated one was kubectl's all along."""
    text = ((live_v.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not text:
        return conflicts
    try:
        last = json.loads(text)
        allowed = typed.field_set(node, last) - typed.compare(node, last, live_v).modified
    except (ValueError, typed.SchemaMismatch):
        return conflicts
    rest = {i: s - allowed for i, s in conflicts.items()}
    return {i: s for i, s in rest.items() if s}


def _sync_last_applied(merged: dict, config: dict) -> None:
    """kubectl's server-side apply keeps an existing last-applied annotation equal to what it
    applies, so that a later client-side apply still computes the right patch."""
    ann = (merged.get("metadata") or {}).get("annotations")
    if not ann or LAST_APPLIED not in ann:
        return
    cfg = json.loads(json.dumps(config))
    cann = (cfg.get("metadata") or {}).get("annotations")
    if cann is not None:
        cann.pop(LAST_APPLIED, None)
        if not cann:
            cfg["metadata"].pop("annotations")
    merged["metadata"] = {**merged["metadata"],
                          "annotations": {**ann, LAST_APPLIED: json.dumps(cfg, separators=(",", ":"))}}


__all__ = ["APPLY", "UPDATE", "Writer", "apply", "check_config", "copy_object", "manager_name",
           "register_schema", "require_apply_manager", "track"]
