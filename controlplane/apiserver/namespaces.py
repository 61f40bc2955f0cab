"""Deleting a namespace: mark it Terminating, empty it, then remove it.

On a real cluster the DELETE only sets `deletionTimestamp` and `status.phase: Terminating` (the
namespace carries the `kubernetes` finalizer in `spec.finalizers`); the kube-controller-manager's
namespace controller then deletes everything inside and finally the namespace itself. New objects
cannot be created in a terminating namespace (403).

Until our controllers exist, the API server runs that controller's loop itself, as a task per
terminating namespace — the same observable result for users (`kubectl delete ns` returns once the
namespace and its contents are gone). Objects with finalizers are marked and waited for, like any
other deletion.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from controlplane.apiserver import meta
from controlplane.apiserver.errors import APIError, forbidden
from controlplane.apiserver.resources import RESOURCES, ResourceType
from controlplane.apiserver.codec import decode, encode
from controlplane.storage import KeyNotFound
from controlplane.storage.watchcache import Entry

if TYPE_CHECKING:
    from controlplane.apiserver.objects import ObjectStore

PROTECTED = ("default", "kube-system", "kube-public")


async def delete(store: ObjectStore, rt: ResourceType, entry: Entry, obj: dict, dry_run: bool) -> dict:
    md = obj["metadata"]
    if md.get("name") in PROTECTED:
        raise forbidden(rt.plural, rt.group, md["name"], "this namespace may not be deleted")
    if dry_run:
        return obj
    if not md.get("deletionTimestamp"):
        md["deletionTimestamp"] = meta.now()
        md["deletionGracePeriodSeconds"] = 0
        obj.setdefault("status", {})["phase"] = "Terminating"
        kv = await store.storage.update(entry.key, encode(obj), entry.revision)
        obj = decode(kv)
    name = md["name"]
    if name not in store.namespace_tasks:
        store.namespace_tasks[name] = asyncio.get_running_loop().create_task(
            _finalize(store, name))
    return obj


async def _finalize(store: ObjectStore, ns: str) -> None:
    """Empty a terminating namespace, then remove it. (Stands in for the kube-controller-
    manager's namespace controller until our controllers exist; same observable result.)"""
    from controlplane.apiserver.objects import DeleteOptions  # objects imports this module
    try:
        while True:
            remaining = 0
            for rt in RESOURCES:
                if not rt.namespaced or "delete" not in rt.verbs:
                    continue
                for e in store.cache.list(rt.key(ns))[0]:
                    remaining += 1
                    if not e.obj["metadata"].get("deletionTimestamp") or rt.kind == "Pod":
                        try:
                            await store.delete(rt, ns, e.obj["metadata"]["name"],
                                               DeleteOptions(grace_period=0))
                        except APIError:
                            pass
            if remaining == 0:
                break
            await asyncio.sleep(0.5)
        entry = store.cache.get(f"/registry/namespaces/{ns}")
        if entry is not None:
            await store.storage.delete(entry.key, 0)
    except (KeyNotFound, asyncio.CancelledError):
        pass
    finally:
        store.namespace_tasks.pop(ns, None)
