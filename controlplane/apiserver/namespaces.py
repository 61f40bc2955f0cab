"""The API server's side of deleting a namespace: mark it Terminating; remove it once finalized.

A namespace carries the `kubernetes` finalizer in `spec.finalizers` (set on create). DELETE only
sets `deletionTimestamp` and `status.phase: Terminating`; from then on no new object may be created
in it (403, objects.py). Emptying it is the namespace controller's job
(controlplane/controllers/namespace.py, part of the controllers, as in kube-controller-manager):
it deletes every namespaced object, then removes its finalizer through the `finalize`
subresource (PUT /api/v1/namespaces/<name>/finalize — the only way to change `spec.finalizers`).
When the last finalizer (spec and metadata) is gone, that write removes the namespace.

So without the controllers a deleted namespace stays Terminating, as it would on a real cluster
whose kube-controller-manager is down. A namespace with no finalizers at all goes at once.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from controlplane.apiserver import meta
from controlplane.apiserver.codec import decode, encode
from controlplane.apiserver.errors import forbidden, not_found
from controlplane.apiserver.resources import ResourceType
from controlplane.storage import Conflict, KeyNotFound
from controlplane.storage.watchcache import Entry

if TYPE_CHECKING:
    from controlplane.apiserver.objects import ObjectStore

PROTECTED = ("default", "kube-system", "kube-public")


def removable(ns: dict) -> bool:
    """Being deleted, and nothing left to wait for: the write that made this so removes it."""
    md = ns.get("metadata") or {}
    return bool(md.get("deletionTimestamp")) and not md.get("finalizers") and \
        not (ns.get("spec") or {}).get("finalizers")


def prepare_update(old: dict, wanted: dict, subresource: str) -> dict | None:
    """The namespace strategies: `finalize` changes only spec.finalizers; a plain update keeps
    them (namespaceStrategy.PrepareForUpdate). None: not ours to decide (other subresources)."""
    if subresource == "finalize":
        new = copy.deepcopy(old)
        fin = (wanted.get("spec") or {}).get("finalizers") or []
        new.setdefault("spec", {})["finalizers"] = [f for f in fin if isinstance(f, str)]
        md = wanted.get("metadata") or {}
        if md.get("resourceVersion"):
            new["metadata"]["resourceVersion"] = md["resourceVersion"]
        return new
    if not subresource and isinstance(wanted.get("spec"), (dict, type(None))):
        wanted.setdefault("spec", {})
        if wanted["spec"] is None:
            wanted["spec"] = {}
        wanted["spec"]["finalizers"] = copy.deepcopy((old.get("spec") or {}).get("finalizers") or [])
    return None


async def delete(store: ObjectStore, rt: ResourceType, entry: Entry, obj: dict, dry_run: bool) -> dict:
    md = obj["metadata"]
    if md.get("name") in PROTECTED:
        raise forbidden(rt.plural, rt.group, md["name"], "this namespace may not be deleted")
    if dry_run:
        return obj
    try:
        if not md.get("deletionTimestamp"):
            md["deletionTimestamp"] = meta.now()
            md["deletionGracePeriodSeconds"] = 0
            obj.setdefault("status", {})["phase"] = "Terminating"
            if removable(obj):
                return decode(await store.storage.delete(entry.key, entry.revision))
            return decode(await store.storage.update(entry.key, encode(obj), entry.revision))
        if removable(obj):
            return decode(await store.storage.delete(entry.key, entry.revision))
    except Conflict:
        # raced with another writer: the caller's loop reads the namespace again
        raise
    except KeyNotFound:
        raise not_found(rt.plural, rt.group, md["name"]) from None
    return obj
