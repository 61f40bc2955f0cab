"""Serving what CustomResourceDefinitions define, and cleaning up when they go.

Two jobs, both run inside the API server process (upstream runs them in the apiextensions
apiserver that kube-apiserver embeds):

1. the resource table follows the CRDs. `CRDController` subscribes to the store after the
   watch cache did; each committed CRD write rebuilds the custom part of REGISTRY (resources.py)
   from the established CRDs in the cache — before the writer's request returns, so the CR
   endpoints, discovery and OpenAPI change the moment `kubectl apply -f crd.yaml` answers;
2. deletion (upstream's finalizer controller): deleting a CRD only marks it (the strategy adds
   the `customresourcecleanup.apiextensions.k8s.io` finalizer); this controller then sets the
   Terminating condition, deletes every object of the resource (objects with finalizers of
   their own are waited for), and removes the finalizer — which removes the CRD, and with the
   next rebuild its endpoints.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING

from controlplane.apiserver import meta
from controlplane.apiserver.apiextensions import crd as crds, openapi, structural
from controlplane.apiserver.apiextensions.custom import CustomResource, CustomResourceStrategy
from controlplane.apiserver.codec import decode
from controlplane.apiserver.errors import APIError
from controlplane.apiserver.resources import REGISTRY, VERBS, ResourceType
from controlplane.storage.interface import Event

if TYPE_CHECKING:
    from controlplane.apiserver.objects import ObjectStore

log = logging.getLogger("nodeagent.apiserver")

PREFIX = "/registry/customresourcedefinitions/"
CRD_RT = REGISTRY.lookup(crds.GROUP, "v1", "customresourcedefinitions")
RETRY = 0.5  # seconds before looking again at a CRD whose objects are still going away

_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(v: str) -> tuple:
    """Kube-aware version order (upstream's CompareKubeAwareVersionStrings): GA before beta
    before alpha, higher numbers first, anything else last in alphabetical order."""
    m = _VERSION.match(v)
    if not m:
        return (1, 0, 0, 0, v)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    return (0, {None: 0, "beta": 1, "alpha": 2}[stage], -major, -minor, v)


def resource_types(crd: dict) -> list[ResourceType]:
    """The ResourceTypes one established CRD serves: one per served version."""
    spec = crd.get("spec") or {}
    names = (crd.get("status") or {}).get("acceptedNames") or spec.get("names") or {}
    group, plural, kind = spec.get("group", ""), names.get("plural", ""), names.get("kind", "")
    namespaced = spec.get("scope") == "Namespaced"
    storage = crds.storage_version(crd)
    versions = [v for v in spec.get("versions") or [] if isinstance(v, dict)]
    single = len(versions) == 1
    out = []
    for v in versions:
        if not v.get("served"):
            continue
        schema = ((v.get("schema") or {}).get("openAPIV3Schema")) or {}
        subs = v.get("subresources") or {}
        subresources = tuple(s for s in ("status", "scale") if subs.get(s) is not None)
        cr = CustomResource(
            crd_name=(crd.get("metadata") or {}).get("name", ""), group=group, version=v["name"],
            storage_version=storage, kind=kind, list_kind=names.get("listKind") or kind + "List",
            plural=plural, namespaced=namespaced, schema=schema, status="status" in subresources,
            scale=subs.get("scale"), columns=tuple(v.get("additionalPrinterColumns") or ()),
            converts=not single or structural.has_defaults(schema),
            selectable=tuple(f["jsonPath"].lstrip(".") for f in v.get("selectableFields") or []
                             if isinstance(f, dict) and isinstance(f.get("jsonPath"), str)),
            warning=_deprecation(v, versions, group, kind))
        rt = ResourceType(group, v["name"], kind, plural, namespaced,
                          tuple(names.get("shortNames") or ()), tuple(names.get("categories") or ()),
                          subresources, True, openapi.definition_name(group, v["name"], kind), VERBS,
                          "", f"{group}/{storage}", custom=cr)
        object.__setattr__(cr, "strategy", CustomResourceStrategy(rt, cr))
        out.append(rt)
    return out


def _deprecation(v: dict, versions: list[dict], group: str, kind: str) -> str:
    """The Warning a deprecated version's requests carry: the CRD's own text, or upstream's
    default naming the preferred non-deprecated version."""
    if not v.get("deprecated"):
        return ""
    if v.get("deprecationWarning"):
        return v["deprecationWarning"]
    text = f"{group}/{v['name']} {kind} is deprecated"
    better = sorted((o["name"] for o in versions if o.get("served") and not o.get("deprecated")),
                    key=version_priority)
    if better and version_priority(better[0]) < version_priority(v["name"]):
        text += f"; use {group}/{better[0]} {kind}"
    return text


class CRDController:
    def __init__(self, store: ObjectStore):
        self.store = store
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Call after the watch cache started (its subscription must run before ours)."""
        self.store.storage.subscribe(self._on_event)
        self.sync()
        for e in self.store.cache.list(PREFIX)[0]:
            if (e.obj.get("metadata") or {}).get("deletionTimestamp"):
                self._queue.put_nowait(e.obj["metadata"]["name"])
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task:
            self._task.cancel()

    def _on_event(self, e: Event) -> None:
        if not e.kv.key.startswith(PREFIX):
            return
        self.sync()
        if e.type == "DELETE" and e.prev is not None:
            # Upstream tears the resource's storage down with its CRD: open watches end.
            gone = decode(e.prev)
            spec = gone.get("spec") or {}
            plural = ((gone.get("status") or {}).get("acceptedNames") or {}).get("plural") or \
                (spec.get("names") or {}).get("plural", "")
            self.store.cache.close_prefix(f"/registry/{spec.get('group', '')}/{plural}/")
        if e.type != "DELETE":
            entry = self.store.cache.get(e.kv.key)
            if entry is not None and (entry.obj.get("metadata") or {}).get("deletionTimestamp"):
                self._queue.put_nowait(entry.obj["metadata"]["name"])

    def sync(self) -> None:
        rts: list[ResourceType] = []
        groups: dict[str, set[str]] = {}
        for e in self.store.cache.list(PREFIX)[0]:
            if not crds.is_established(e.obj):
                continue
            for rt in resource_types(e.obj):
                rts.append(rt)
                groups.setdefault(rt.group, set()).add(rt.version)
        REGISTRY.set_custom(rts, {g: sorted(vs, key=version_priority) for g, vs in groups.items()})

    # ---- deletion ----

    async def _run(self) -> None:
        while True:
            name = await self._queue.get()
            try:
                if not await self._finalize(name):
                    asyncio.get_running_loop().call_later(RETRY, self._queue.put_nowait, name)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop the cleanup of other CRDs
                log.exception("cleaning up custom resources of %s", name)
                asyncio.get_running_loop().call_later(RETRY * 4, self._queue.put_nowait, name)

    async def _finalize(self, name: str) -> bool:
        """One pass; True when done (or nothing to do), False to look again later."""
        e = self.store.cache.get(PREFIX + name)
        if e is None:
            return True
        md = e.obj.get("metadata") or {}
        if not md.get("deletionTimestamp") or crds.FINALIZER not in (md.get("finalizers") or []):
            return True
        await self._condition(name, "True", "InstanceDeletionInProgress",
                              "CustomResource deletion is in progress")
        spec = e.obj.get("spec") or {}
        group = spec.get("group", "")
        plural = ((e.obj.get("status") or {}).get("acceptedNames") or {}).get("plural") or \
            (spec.get("names") or {}).get("plural", "")
        rt = next((r for r in REGISTRY.custom if r.group == group and r.plural == plural), None)
        remaining = self.store.cache.list(f"/registry/{group}/{plural}/")[0]
        if remaining and rt is not None:
            from controlplane.apiserver.objects import DeleteOptions
            for item in remaining:
                imd = item.obj.get("metadata") or {}
                if imd.get("deletionTimestamp"):
                    continue
                try:
                    await self.store.delete(rt, imd.get("namespace"), imd.get("name", ""), DeleteOptions())
                except APIError as err:
                    if err.code != 404:
                        raise
            if self.store.cache.list(f"/registry/{group}/{plural}/")[0]:
                return False
        await self._condition(name, "False", "InstanceDeletionCompleted",
                              "removed all instances")

        def drop_finalizer(cur: dict) -> dict:
            cur["metadata"]["finalizers"] = [f for f in cur["metadata"].get("finalizers") or []
                                             if f != crds.FINALIZER]
            cur["metadata"].pop("resourceVersion", None)
            return cur
        try:
            await self.store.update(CRD_RT, None, name, drop_finalizer)
        except APIError as err:
            if err.code != 404:
                raise
        return True

    async def _condition(self, name: str, status: str, reason: str, message: str) -> None:
        def transform(cur: dict) -> dict:
            st = cur.setdefault("status", {}) if isinstance(cur.get("status"), dict) else None
            if st is None:
                cur["status"] = st = {}
            conds = [c for c in st.get("conditions") or [] if c.get("type") != "Terminating"]
            prev = next((c for c in st.get("conditions") or [] if c.get("type") == "Terminating"), None)
            if prev and prev.get("status") == status and prev.get("reason") == reason:
                conds.append(prev)
            else:
                conds.append({"type": "Terminating", "status": status, "lastTransitionTime": meta.now(),
                              "reason": reason, "message": message})
            st["conditions"] = conds
            cur["metadata"].pop("resourceVersion", None)
            return cur
        try:
            await self.store.update(CRD_RT, None, name, transform, "status")
        except APIError as err:
            if err.code != 404:
                raise
