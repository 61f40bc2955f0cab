"""metadata.managedFields: who owns which fields, and the two ways ownership changes.

Each entry is one *manager identity* — (manager, operation, apiVersion for Update, subresource) —
with its field set, the time it last changed something, and its fieldsV1:

    - manager: kubectl-client-side-apply          - manager: kubectl
      operation: Update                             operation: Apply
      apiVersion: apps/v1                           apiVersion: apps/v1
      time: "2026-12-06T05:00:00Z"                  time: ...
      fieldsType: FieldsV1                          fieldsType: FieldsV1
      fieldsV1: {f:spec: {f:replicas: {}}}          fieldsV1: {...}

The rules (structured-merge-diff merge/update.go, apimachinery's managedfields/internal):

- Update (create, PUT, the three patch kinds): the writer gains every field it added or changed
  and loses those it removed; every *other* manager loses the fields the write changed or
  removed. Nothing conflicts: an update always wins (force). Entries of the same manager and
  apiVersion collapse into one, whose time moves only when the write took some field.
- Apply: the writer's set becomes exactly the applied configuration's fields. A field another
  manager owns and the apply would change is a conflict (409), unless `force`, which moves it.
  Fields the writer applied before and no longer applies are removed from the object — unless
  some other manager still owns them.
- At most ten Update entries are kept; the oldest collapse into `ancient-changes`.
- Server-set metadata (name, uid, resourceVersion, ...) is never owned.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from controlplane.apiserver.errors import APIError
from controlplane.apiserver.fieldmanager import fieldpath as fp
from controlplane.apiserver.fieldmanager import typed
from controlplane.apiserver.fieldmanager.typeinfo import Node

APPLY, UPDATE = "Apply", "Update"
MAX_UPDATE_MANAGERS = 10
ANCIENT = "ancient-changes"

# Never owned (stripmeta.go): set by the server or naming the object.
STRIPPED = (("f:apiVersion",), ("f:kind",)) + tuple(
    ("f:metadata", "f:" + f) for f in ("name", "namespace", "creationTimestamp", "selfLink", "uid",
                                       "clusterName", "generation", "managedFields",
                                       "resourceVersion", "deletionTimestamp",
                                       "deletionGracePeriodSeconds"))


@dataclass(frozen=True)
class Identity:
    """A manager as ownership is keyed: Apply entries are one per manager whatever the version."""
    manager: str
    operation: str
    api_version: str  # "" for Apply
    subresource: str = ""

    def describe(self) -> str:
        """As conflict messages name it (printManager)."""
        s = json.dumps(self.manager)
        if self.subresource:
            s += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == UPDATE:
            s += f" using {self.api_version}"
        return s


@dataclass
class Owned:
    fields: set
    api_version: str
    time: str | None


Managed = dict  # Identity → Owned


def identity(manager: str, operation: str, api_version: str, subresource: str = "") -> Identity:
    return Identity(manager, operation, api_version if operation == UPDATE else "", subresource)


def decode(entries) -> Managed | None:
    """managedFields → Managed; None when they are missing or not valid managedFields."""
    if not isinstance(entries, list) or not entries:
        return None
    out: Managed = {}
    try:
        for e in entries:
            if e == {}:
                continue  # `managedFields: [{}]` is how a client clears them
            if not isinstance(e, dict) or e.get("operation") not in (APPLY, UPDATE) or \
                    e.get("fieldsType", "FieldsV1") != "FieldsV1":
                return None
            ident = identity(str(e.get("manager", "")), e["operation"], str(e.get("apiVersion", "")),
                             str(e.get("subresource", "")))
            fields = fp.from_fields_v1(e.get("fieldsV1") or {})
            prev = out.get(ident)
            if prev is not None:  # duplicates merge, as decodeManagedFields does
                prev.fields |= fields
            else:
                out[ident] = Owned(fields, str(e.get("apiVersion", "")), e.get("time"))
    except ValueError:
        return None
    return out


def encode(managed: Managed) -> list[dict]:
    """Managed → managedFields, sorted as upstream sorts them: Apply before Update, then by time,
    manager, apiVersion."""
    entries = []
    for ident, owned in managed.items():
        if not owned.fields:
            continue
        e = {"manager": ident.manager, "operation": ident.operation,
             "apiVersion": owned.api_version}
        if owned.time:
            e["time"] = owned.time
        e["fieldsType"] = "FieldsV1"
        e["fieldsV1"] = fp.to_fields_v1(owned.fields)
        if ident.subresource:
            e["subresource"] = ident.subresource
        entries.append(e)
    entries.sort(key=lambda e: (e["operation"], e.get("time") or "", e["manager"], e["apiVersion"],
                                e.get("subresource", "")))
    return entries


# ---- conflicts ----

def conflict_error(conflicts: dict[Identity, set]) -> APIError:
    """409 as upstream words it (internal/conflict.go); causes name each field."""
    flat = [(ident, p) for ident in sorted(conflicts, key=lambda i: i.describe())
            for p in sorted(conflicts[ident])]
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {i.describe()}",
               "field": fp.to_string(p)} for i, p in flat]
    if len(flat) == 1:
        i, p = flat[0]
        msg = f"Apply failed with 1 conflict: conflict with {i.describe()}: {fp.to_string(p)}"
    else:
        lines = []
        for ident in sorted(conflicts, key=lambda i: i.describe()):
            lines.append(f"conflicts with {ident.describe()}")
            lines.extend(f"- {fp.to_string(p)}" for p in sorted(conflicts[ident]))
        msg = f"Apply failed with {len(flat)} conflicts: " + "\n".join(lines)
    return APIError(409, "Conflict", msg, {"causes": causes})


class Conflicts(Exception):
    def __init__(self, conflicts: dict[Identity, set]):
        super().__init__("conflicts")
        self.conflicts = conflicts


# ---- the updater ----

def _update(node: Node, old, new, managers: Managed, writer: Identity, force: bool,
            ignored: tuple) -> typed.Comparison:
    """Ownership after `old` became `new` by `writer`: others lose what changed (or conflict)."""
    cmp = typed.compare(node, old, new).exclude(ignored)
    changed = cmp.modified | cmp.added
    conflicts = {}
    for ident, owned in managers.items():
        if ident == writer:
            continue
        hit = owned.fields & changed
        if hit:
            conflicts[ident] = hit
    if conflicts and not force:
        raise Conflicts(conflicts)
    for ident, owned in list(managers.items()):
        if ident == writer:
            continue
        owned.fields = owned.fields - conflicts.get(ident, set()) - cmp.removed
        if not owned.fields:
            del managers[ident]
    return cmp


def update(node: Node, old, new, managers: Managed, writer: Identity, api_version: str, now: str,
           ignored: tuple) -> None:
    """An Update by `writer` (managedfieldsupdater.go: its set grows by what it changed)."""
    previous = managers.pop(writer, None)
    current = Identity("\0current-operation", UPDATE, api_version)
    if previous is not None:
        managers[writer] = previous  # its old fields are treated as anyone else's
    cmp = _update(node, old, new, managers, current, True, ignored)
    took = fp.exclude(cmp.modified | cmp.added, ignored)
    prev = managers.pop(writer, None)
    if took:
        managers[writer] = Owned(took | (prev.fields if prev else set()), api_version, now)
    elif prev is not None:
        managers[writer] = prev


def apply(node: Node, live, config, managers: Managed, writer: Identity, api_version: str,
          force: bool, ignored: tuple):
    """An Apply by `writer`: the merged object, after pruning what it no longer applies.
    Raises Conflicts. (merge/update.go Updater.Apply.)"""
    fields = fp.exclude(typed.field_set(node, config, strict=True), ignored)
    merged = typed.merge(node, live, config)
    last = managers.get(writer)
    managers[writer] = Owned(fields, api_version, last.time if last else None)
    if last is not None and not last.fields <= fields:  # it stopped applying something
        merged = _prune(node, merged, managers, last.fields)
    _update(node, live, merged, managers, writer, force, ignored)
    return merged


def _prune(node: Node, merged, managers: Managed, last: set):
    """Remove what the writer applied last time and applies no more, unless someone (the writer
    included) still owns it or something under it (addBackOwnedItems / addBackDanglingItems)."""
    owned: set = set()
    for o in managers.values():
        owned |= o.fields
    keep = fp.with_ancestors(owned)  # (ensure_named adds only ancestors: already here)
    drop = {p for p in typed.ensure_named(node, last) if p not in keep}
    return typed.remove(node, merged, drop)


def cap(managers: Managed, api_version: str) -> None:
    """Keep at most MAX_UPDATE_MANAGERS Update entries; fold the oldest into ancient-changes
    (capmanagers.go)."""
    updates = [i for i in managers if i.operation == UPDATE and i.manager != ANCIENT]
    if len(updates) + (1 if any(i.manager == ANCIENT for i in managers) else 0) <= MAX_UPDATE_MANAGERS:
        return
    updates.sort(key=lambda i: managers[i].time or "")
    ancient = Identity(ANCIENT, UPDATE, api_version)
    while len([i for i in managers if i.operation == UPDATE]) > MAX_UPDATE_MANAGERS and updates:
        oldest = updates.pop(0)
        o = managers.pop(oldest)
        a = managers.get(ancient)
        if a is None:
            managers[ancient] = Owned(set(o.fields), o.api_version, o.time)
        else:
            a.fields |= o.fields
            a.time = max(a.time or "", o.time or "") or None
