"""The generic registry: what happens to an object on create, update, delete — for every kind.

This is the kube-apiserver's genericregistry.Store in small. Storage keeps bytes under keys; here
those bytes become Kubernetes objects with their lifecycle rules:

- create: `generateName` → a unique name; the server sets `uid`, `creationTimestamp`,
  `generation: 1`; defaults are filled and the object validated (422) before it is stored; a
  taken name is 409 AlreadyExists.
- resourceVersion is *not* stored inside the object: it is the storage revision of the write
  (mod_rev), put into `metadata.resourceVersion` when the object is read. One counter for the
  whole cluster, so any list or watch can be resumed from it.
- update (PUT, PATCH, and the status/scale subresources) is a compare-and-swap loop: read the
  current object, compute the new one, write it only if the key's revision is still the one read.
  A client that sent a resourceVersion gets 409 Conflict if someone wrote in between (optimistic
  concurrency); a client that did not is retried on the newest object. `generation` goes up only
  when the spec changes; a write that changes nothing is not written at all.
- status and spec are split: PUT on the object ignores `status`, PUT on `/status` changes only
  `status` (the node agent owns pod status, users own the spec).
- delete is two-phase when something must happen first. With finalizers the object only gets a
  `deletionTimestamp` and stays until the last finalizer is removed. A scheduled pod gets a
  grace period (`deletionGracePeriodSeconds`, default its terminationGracePeriodSeconds): the node
  agent stops its containers and then confirms with a delete of grace 0, which removes it.

Everything returned is a fresh dict the caller may change; objects in the watch cache are shared
and never mutated here (we deep-copy before changing).
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import json
from dataclasses import dataclass
from typing import Callable

from controlplane.apiserver import fieldmanager, meta, namespaces, webhooks
from controlplane.apiserver.strategy import for_kind
from controlplane.apiserver.codec import decode, encode
from controlplane.apiserver.errors import (
    already_exists, bad_request, conflict, forbidden, forbidden_field, gone, invalid, invalid_object,
    not_found, not_supported)
from controlplane.apiserver.resources import ResourceType
from controlplane.apiserver.selectors import FieldSelector, LabelSelector
from controlplane.storage import Compacted, Conflict, KeyExists, KeyNotFound, Storage
from controlplane.storage.watchcache import Entry, WatchCache


MAX_WRITE_ROUNDS = 200   # compare-and-swap attempts of one write before a 409 "too many writers"


@dataclass(frozen=True)
class DeleteOptions:
    grace_period: int | None = None
    uid: str | None = None  # preconditions
    resource_version: str | None = None
    propagation: str | None = None  # Orphan | Background | Foreground | None (the kind's default)
    dry_run: bool = False
    orphan_dependents: bool | None = None  # deprecated spelling of propagation Orphan


_PROPAGATION = ("Foreground", "Background", "Orphan")
# The garbage collector's finalizers (metav1.FinalizerOrphanDependents / FinalizerDeleteDependents).
ORPHAN, FOREGROUND = "orphan", "foregroundDeletion"


def delete_options(body: dict, dry_run: bool = False) -> DeleteOptions:
    """A DeleteOptions object (the request body, or the query parameters as one) checked as
    upstream's ValidateDeleteOptions: a bad value is a 422 naming the field."""
    errs = []
    grace = body.get("gracePeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
        raise bad_request(f"DeleteOptions: json: cannot decode field \"gracePeriodSeconds\": "
                          f"expected integer, got {grace!r}")
    dry = body.get("dryRun") or []
    if isinstance(dry, str):
        dry = [dry]
    if not isinstance(dry, list) or any(v != "All" for v in dry):
        errs.append(not_supported("dryRun", dry, ["All"]))
    policy = body.get("propagationPolicy")
    orphan = body.get("orphanDependents")
    if isinstance(orphan, str):
        orphan = orphan.lower() == "true"
    if orphan is not None and policy is not None:
        errs.append(invalid("propagationPolicy", policy,
                            "orphanDependents and deletionPropagation cannot be both set"))
    if policy is not None and policy not in _PROPAGATION:
        errs.append(not_supported("propagationPolicy", policy, [*_PROPAGATION, "nil"]))
    if errs:
        raise invalid_object("DeleteOptions", "meta.k8s.io", "", errs)
    pre = body.get("preconditions") or {}
    if not isinstance(pre, dict):
        raise bad_request("DeleteOptions: preconditions must be an object")
    return DeleteOptions(grace, pre.get("uid"), pre.get("resourceVersion"), policy,
                         dry_run or bool(dry), orphan)


def _gc_finalizers(finalizers: list[str], opts: DeleteOptions) -> list[str]:
    """The finalizers a delete leaves for the garbage collector (upstream's
    deletionFinalizersForGarbageCollection): Orphan adds `orphan` (the collector strips the
    owner references of dependents, then the finalizer), Foreground adds `foregroundDeletion`
    (dependents go first); Background adds neither, and an explicit policy replaces whichever
    of the two the object had. Every kind here defaults to Background, as apps/v1 does."""
    orphan = opts.orphan_dependents if opts.orphan_dependents is not None else (
        opts.propagation == "Orphan" if opts.propagation else ORPHAN in finalizers)
    foreground = False if opts.orphan_dependents is not None else (
        opts.propagation == "Foreground" if opts.propagation else FOREGROUND in finalizers)
    out = [f for f in finalizers if f not in (ORPHAN, FOREGROUND)]
    if orphan:
        out.append(ORPHAN)
    if foreground:
        out.append(FOREGROUND)
    return finalizers if set(out) == set(finalizers) else out


@dataclass(frozen=True)
class Page:
    items: list[Entry | dict]  # cache entries (first page) or decoded dicts (later pages)
    revision: int
    continue_token: str
    remaining: int | None


class ObjectStore:
    def __init__(self, storage: Storage, cache: WatchCache,
                 service_cidr: str = "10.96.0.0/12", node_port_range: tuple[int, int] = (30000, 32767)):
        self.storage = storage
        self.cache = cache
        self.service_net = ipaddress.ip_network(service_cidr)
        self.node_ports = node_port_range
        self.reserved: set = set()  # service IPs/ports allocated to creates not yet stored

    # ---- reads ----

    def get(self, rt: ResourceType, ns: str | None, name: str) -> Entry:
        e = self.cache.get(rt.key(ns, name))
        if e is None:
            raise not_found(rt.plural, rt.group, name)
        return e

    async def list(self, rt: ResourceType, ns: str | None, labels: LabelSelector,
                   fields: FieldSelector, limit: int = 0, token: str = "") -> Page:
        prefix = rt.key(ns)
        name_pin = fields.value_of("metadata.name")

        def keep(obj: dict) -> bool:
            md = obj.get("metadata") or {}
            return labels.matches(md.get("labels")) and fields.matches(obj)

        if not token:
            rev = self.cache.revision
            if name_pin is not None and (ns or not rt.namespaced):  # a single-object read
                e = self.cache.get(rt.key(ns, name_pin))
                return Page([e] if e and keep(e.obj) else [], rev, "", None)
            entries, _ = self.cache.list(prefix)
            out = [e for e in entries if keep(e.obj)] if not (labels.empty and fields.empty) else entries
            if limit and len(out) > limit:
                last = out[limit - 1].key
                return Page(out[:limit], rev, _token(rev, last[len(prefix):]), len(out) - limit)
            return Page(out, rev, "", None)
        # Later pages: read the store *as of the first page's revision*, so the pages together
        # are one consistent snapshot even if objects changed in between.
        rev, start = _parse_token(token)
        items: list[dict] = []
        after = prefix + start
        try:
            while True:
                kvs, _, more = await self.storage.list(prefix, rev, after, max(limit, 100))
                for kv in kvs:
                    obj = decode(kv)
                    if keep(obj):
                        items.append(obj)
                        if limit and len(items) == limit + 1:
                            break
                if not more or (limit and len(items) > limit) or not kvs:
                    break
                after = kvs[-1].key
        except Compacted:
            raise gone("The provided continue parameter is too old to display a consistent list "
                       "result. You can start a new list without the continue parameter.") from None
        if limit and len(items) > limit:
            items = items[:limit]
            last = rt.key(items[-1]["metadata"].get("namespace"), items[-1]["metadata"]["name"])
            return Page(items, rev, _token(rev, last[len(prefix):]), None)
        return Page(items, rev, "", None)

    # ---- create ----

    async def create(self, rt: ResourceType, ns: str | None, obj: dict, dry_run: bool = False,
                     writer: fieldmanager.Writer | None = None) -> dict:
        """`writer` is who creates (fieldManager); None for the server's own objects."""
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {}) if isinstance(obj.get("metadata"), dict) else None
        if md is None:
            raise bad_request("metadata: expected an object")
        if rt.namespaced:
            body_ns = md.get("namespace")
            if body_ns and ns and body_ns != ns:
                raise bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request")
            md["namespace"] = ns or body_ns or "default"
            ns = md["namespace"]
        else:
            md.pop("namespace", None)
        if not md.get("name") and md.get("generateName"):
            md["name"] = meta.generate_name(md["generateName"])
        obj["apiVersion"], obj["kind"] = rt.stored_api_version, rt.kind
        for f in ("resourceVersion", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"):
            md.pop(f, None)
        md["uid"] = meta.new_uid()
        md["creationTimestamp"] = meta.now()
        if rt.has_spec:
            md["generation"] = 1
        claimed: set = set()  # ClusterIP/NodePorts this create reserved, released below
        try:
            return await self._create(rt, ns, obj, dry_run, claimed, writer)
        finally:
            self.reserved -= claimed

    async def _create(self, rt: ResourceType, ns: str | None, obj: dict, dry_run: bool,
                      claimed: set, writer: fieldmanager.Writer | None) -> dict:
        md = obj["metadata"]
        strategy = for_kind(rt)
        strategy.prepare_for_create(obj)
        strategy.canonicalize(obj)
        strategy.default(obj)
        strategy.admit(obj, None, self.cache)
        mutated = await webhooks.mutate(self.cache, rt, "CREATE", "", obj, None, dry_run)
        if mutated is not obj:  # a webhook's patch: defaulted again, as decoding its output would
            obj = mutated
            strategy.default(obj)
            md = obj["metadata"]
        errs = strategy.validate(obj)
        if not errs:
            errs = strategy.allocate(obj, None, self, claimed)
            self.reserved |= claimed
        if errs:
            raise invalid_object(rt.kind, rt.group, md.get("name", ""), errs)
        if rt.namespaced:
            self._check_namespace(rt, ns, md["name"])
        await webhooks.validate(self.cache, rt, "CREATE", "", obj, None, dry_run)
        fieldmanager.track(rt, None, obj, writer)  # managedFields: the final object's owners
        if dry_run:
            return obj
        try:
            kv = await self.storage.create(rt.key(ns, md["name"]), encode(obj))
        except KeyExists:
            raise already_exists(rt.plural, rt.group, md["name"]) from None
        return decode(kv)

    def _check_namespace(self, rt: ResourceType, ns: str, name: str) -> None:
        e = self.cache.get(f"/registry/namespaces/{ns}")
        if e is None:
            raise not_found("namespaces", "", ns)
        if (e.obj.get("status") or {}).get("phase") == "Terminating":
            raise forbidden(rt.plural, rt.group, name, f"unable to create new content in namespace "
                            f"{ns} because it is being terminated")

    # ---- update ----

    async def update(self, rt: ResourceType, ns: str | None, name: str,
                     transform: Callable[[dict], dict], subresource: str = "",
                     dry_run: bool = False, precondition_rv: str | None = None,
                     writer: fieldmanager.Writer | None = None) -> tuple[dict, dict]:
        """Compare-and-swap loop. `transform(current)` returns the object the client asks for;
        `writer` is who writes (fieldManager), None for the server's own writes.
        Returns (old, new) objects."""
        claimed: set = set()  # ClusterIP/NodePorts this update reserved, released below
        try:
            return await self._update(rt, ns, name, transform, subresource, dry_run,
                                      precondition_rv, claimed, writer)
        finally:
            self.reserved -= claimed

    async def _update(self, rt, ns, name, transform, subresource, dry_run, precondition_rv,
                      claimed: set, writer) -> tuple[dict, dict]:
        # Each lost race means another writer's update landed, so every round makes progress;
        # with N writers on one object the last may lose N-1 rounds. Upstream's GuaranteedUpdate
        # retries without a bound; ours is a guard against a livelock bug, far above any real N.
        for _ in range(MAX_WRITE_ROUNDS):
            self.reserved -= claimed
            claimed.clear()
            entry = self.get(rt, ns, name)
            old = entry.obj
            wanted = transform(fieldmanager.copy_object(old))
            rv = precondition_rv
            if rv is None and isinstance(wanted.get("metadata"), dict):
                rv = wanted["metadata"].get("resourceVersion") or None
            if rv is not None and rv != old["metadata"]["resourceVersion"]:
                raise conflict(rt.plural, rt.group, name)
            new = self._merge_update(rt, old, wanted, subresource)
            if subresource != "status":
                errs = for_kind(rt).allocate(new, old, self, claimed, entry.key)
                self.reserved |= claimed
                if errs:
                    raise invalid_object(rt.kind, rt.group, name, errs)
            if webhooks.any_configured(self.cache):
                new = await self._update_webhooks(rt, old, new, subresource, dry_run)
            fieldmanager.track(rt, old, new, writer)  # managedFields, before "did it change?"
            if self._unchanged(old, new):
                return old, fieldmanager.copy_object(old)
            if dry_run:
                return old, new
            md = new["metadata"]
            try:
                if namespaces.removable(new) if rt.kind == "Namespace" else (
                        md.get("deletionTimestamp") and not md.get("finalizers") and
                        not md.get("deletionGracePeriodSeconds")):
                    kv = await self.storage.delete(entry.key, entry.revision)  # last finalizer gone
                else:
                    kv = await self.storage.update(entry.key, encode(new), entry.revision)
            except Conflict:
                if rv is not None:
                    raise conflict(rt.plural, rt.group, name) from None
                await self.cache.wait_for(self.storage.revision)
                continue
            except KeyNotFound:
                raise not_found(rt.plural, rt.group, name) from None
            return old, decode(kv)
        raise conflict(rt.plural, rt.group, name, "too many concurrent writers; try again")

    async def _update_webhooks(self, rt: ResourceType, old: dict, new: dict, subresource: str,
                               dry_run: bool) -> dict:
        mutated = await webhooks.mutate(self.cache, rt, "UPDATE", subresource, new, old, dry_run)
        if mutated is not new:
            strategy = for_kind(rt)
            strategy.default(mutated)
            errs = strategy.validate(mutated) + strategy.validate_update(mutated, old)
            if errs:
                raise invalid_object(rt.kind, rt.group, old["metadata"]["name"], errs)
        await webhooks.validate(self.cache, rt, "UPDATE", subresource, mutated, old, dry_run)
        return mutated

    @staticmethod
    def _unchanged(old: dict, new: dict) -> bool:
        a = {**old, "metadata": {k: v for k, v in old["metadata"].items() if k != "resourceVersion"}}
        b = {**new, "metadata": {k: v for k, v in new["metadata"].items() if k != "resourceVersion"}}
        return a == b

    def _merge_update(self, rt: ResourceType, old: dict, wanted: dict, subresource: str) -> dict:
        if not isinstance(wanted.get("metadata"), dict):
            raise bad_request("metadata: expected an object")
        name = old["metadata"]["name"]
        wname = wanted["metadata"].get("name")
        if wname and wname != name:
            raise bad_request(f"the name of the object ({wname}) does not match the name on the "
                              f"URL ({name})")
        if wanted.get("apiVersion") not in (None, rt.api_version, rt.stored_api_version) or \
                wanted.get("kind") not in (None, rt.kind):
            raise bad_request(f'the API version in the data ({wanted.get("apiVersion")}) does not '
                              f'match the expected API version ({rt.api_version})')
        strategy = for_kind(rt)
        ns_new = namespaces.prepare_update(old, wanted, subresource) if rt.kind == "Namespace" else None
        if ns_new is not None:
            new = ns_new
        elif subresource == "status":
            new = fieldmanager.copy_object(old)
            if "managedFields" in wanted["metadata"]:  # an apply's, computed for this write
                new["metadata"]["managedFields"] = wanted["metadata"]["managedFields"]
            new["status"] = wanted.get("status")
            if new["status"] is None:
                new.pop("status")
        elif subresource == "ephemeralcontainers":  # kubectl debug: only this list may change
            new = fieldmanager.copy_object(old)
            ephemeral = (wanted.get("spec") or {}).get("ephemeralContainers")
            spec = new.setdefault("spec", {})
            if ephemeral:
                spec["ephemeralContainers"] = ephemeral
            else:
                spec.pop("ephemeralContainers", None)
        else:
            new = wanted
            if strategy.status_split:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
        new["apiVersion"], new["kind"] = rt.stored_api_version, rt.kind
        md, omd = new["metadata"], old["metadata"]
        for f in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                  "deletionGracePeriodSeconds", "generation"):
            if f in omd:
                md[f] = omd[f]
            else:
                md.pop(f, None)
        md.pop("selfLink", None)  # managedFields stay for fieldmanager.track to judge
        md["resourceVersion"] = omd["resourceVersion"]
        if not subresource:
            strategy.prepare_for_update(new, old)
        strategy.canonicalize(new)
        strategy.default(new)
        if strategy.generation_changed(new, old):
            md["generation"] = omd.get("generation", 0) + 1
        if subresource != "status":
            strategy.admit(new, old, self.cache)
        errs = strategy.validate(new) + strategy.validate_update(new, old)
        if omd.get("deletionTimestamp"):
            added = set(md.get("finalizers") or []) - set(omd.get("finalizers") or [])
            if added:
                errs.append(forbidden_field("metadata.finalizers",
                                            "no new finalizers can be added if the object is being deleted"))
        if errs:
            raise invalid_object(rt.kind, rt.group, name, errs)
        return new

    # ---- delete ----

    async def delete(self, rt: ResourceType, ns: str | None, name: str,
                     opts: DeleteOptions) -> dict:
        dry_run = opts.dry_run
        for _ in range(MAX_WRITE_ROUNDS):
            entry = self.get(rt, ns, name)
            obj = copy.deepcopy(entry.obj)
            md = obj["metadata"]
            if opts.uid is not None and opts.uid != md.get("uid"):
                raise conflict(rt.plural, rt.group, name, f"Precondition failed: UID in precondition: "
                               f"{opts.uid}, UID in object meta: {md.get('uid')}")
            if opts.resource_version is not None and opts.resource_version != md["resourceVersion"]:
                raise conflict(rt.plural, rt.group, name, f"Precondition failed: ResourceVersion in "
                               f"precondition: {opts.resource_version}, ResourceVersion in object "
                               f"meta: {md['resourceVersion']}")
            if rt.kind == "Namespace":  # namespaces.py: mark Terminating; the controller empties it
                try:
                    return await namespaces.delete(self, rt, entry, obj, dry_run)
                except Conflict:  # raced with another writer: read the namespace again
                    await self.cache.wait_for(self.storage.revision)
                    continue
            strategy = for_kind(rt)
            strategy.check_delete(obj)
            await webhooks.validate(self.cache, rt, "DELETE", "", None, entry.obj, dry_run)
            grace = strategy.grace_period(obj, opts)
            finalizers = md.get("finalizers") or []
            new_finalizers = _gc_finalizers(finalizers, opts)
            if new_finalizers or grace > 0:
                # Phase one: mark the object; whoever owns the finalizer (or the node agent, for
                # a pod's grace period) finishes the deletion.
                old_grace = md.get("deletionGracePeriodSeconds")
                if md.get("deletionTimestamp") and old_grace is not None and grace >= old_grace \
                        and new_finalizers == finalizers:
                    return obj  # already terminating at least this fast
                if new_finalizers:
                    md["finalizers"] = new_finalizers
                if not md.get("deletionTimestamp") or old_grace is None or grace < old_grace:
                    md["deletionTimestamp"] = meta.time_after(grace)
                    md["deletionGracePeriodSeconds"] = grace
                if dry_run:
                    return obj
                try:
                    kv = await self.storage.update(entry.key, encode(obj), entry.revision)
                except Conflict:
                    await self.cache.wait_for(self.storage.revision)
                    continue
                except KeyNotFound:
                    raise not_found(rt.plural, rt.group, name) from None
                return decode(kv)
            if dry_run:
                return obj
            try:
                kv = await self.storage.delete(entry.key, entry.revision)
            except Conflict:
                await self.cache.wait_for(self.storage.revision)
                continue
            except KeyNotFound:
                raise not_found(rt.plural, rt.group, name) from None
            return decode(kv)
        raise conflict(rt.plural, rt.group, name, "too many concurrent writers; try again")

    async def close(self) -> None:
        """Nothing runs in the background here: emptying a deleted namespace is the namespace
        controller's job (controlplane/controllers/namespace.py)."""


def _token(rev: int, start: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rev, "start": start + "\x00"})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _parse_token(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        return int(data["rv"]), str(data["start"]).rstrip("\x00")
    except (ValueError, KeyError, TypeError) as e:
        raise bad_request(f"continue key is not valid: {e}") from None
