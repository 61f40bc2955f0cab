"""The namespace controller: empty a deleted namespace, then let the API server remove it.

`kubectl delete ns x` only marks the namespace (deletionTimestamp, phase Terminating; see
controlplane/apiserver/namespaces.py). For a namespace that is terminating and still carries the
`kubernetes` finalizer, one sync (upstream's namespaced_resources_deleter):

  1. for every namespaced resource the server serves (discovery) that can be listed and
     deleted: DELETE the whole collection in the namespace (propagationPolicy Background);
  2. list what remains. Objects that wait for something — a pod for its kubelet's confirmation,
     an object for its finalizers — are reported in the namespace's status conditions
     (NamespaceContentRemaining, NamespaceFinalizersRemaining), and the namespace is checked
     again shortly;
  3. when nothing remains, PUT namespaces/<x>/finalize without `kubernetes`; the server removes
     the namespace with that write, and `kubectl delete ns` (which watches for it) returns.

Nothing here reaches into storage: it is an API client like any other, so what the user sees
(the conditions, the order of removal) is what a real cluster shows.
"""

from __future__ import annotations

from apiclient import NAMESPACES, ApiError, Conflict, NotFound

from controlplane.controllers.base import Context, Controller
from controlplane.controllers.meta import now_rfc3339

FINALIZER = "kubernetes"
RECHECK = 0.5  # seconds between checks of a namespace whose content is still going away


# type, reason when True, reason when False, message when False (upstream's words)
CONDITIONS = (
    ("NamespaceDeletionDiscoveryFailure", "DiscoveryFailed", "ResourcesDiscovered",
     "All resources successfully discovered"),
    ("NamespaceDeletionGroupVersionParsingFailure", "GroupVersionParsingFailed", "ParsedGroupVersions",
     "All legacy kube types successfully parsed"),
    ("NamespaceDeletionContentFailure", "ContentDeletionFailed", "ContentDeleted",
     "All content successfully deleted, may be waiting on finalization"),
    ("NamespaceContentRemaining", "SomeResourcesRemain", "ContentRemoved", "All content successfully removed"),
    ("NamespaceFinalizersRemaining", "SomeFinalizersRemain", "ContentHasNoFinalizers",
     "All content-preserving finalizers finished"),
)


class NamespaceController(Controller):
    name = "namespace"

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.namespaces = ctx.informers.get(NAMESPACES)
        self.namespaces.add_handler(self._event)
        self.resources = [d for d in ctx.discovered if d.res.namespaced and "list" in d.verbs
                          and ("deletecollection" in d.verbs or "delete" in d.verbs)]
        # Resources found empty in a terminating namespace stay empty (the API server refuses
        # new content there), so later checks skip them: namespace → resource names.
        self.emptied: dict[str, set[str]] = {}

    def _event(self, type_: str, ns: dict, old: dict | None) -> None:
        if type_ != "DELETED" and ns["metadata"].get("deletionTimestamp"):
            self.enqueue(ns)

    async def sync(self, key: str) -> None:
        ns = self.namespaces.get("", key)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            self.emptied.pop(key, None)
            return
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return  # someone else's finalizer holds it; not ours to wait for
        await self.rediscover()
        remaining, with_finalizers, errors = await self.delete_content(key)
        await self.report(ns, remaining, with_finalizers, errors)
        if remaining or errors:
            self.queue.add_after(key, RECHECK)
            return
        await self.finalize(key)
        self.emptied.pop(key, None)

    async def rediscover(self) -> None:
        """Resources come and go with CustomResourceDefinitions: ask discovery again before each
        pass (upstream's deleter does too), or a terminating namespace would be removed with the
        objects of a CRD created after this controller started still in it."""
        from controlplane.controllers.manager import discover  # the manager loads this module
        try:
            found = await discover(self.api)
        except ApiError:
            return  # keep the last list; the next pass asks again
        self.resources = [d for d in found if d.res.namespaced and "list" in d.verbs
                          and ("deletecollection" in d.verbs or "delete" in d.verbs)]

    async def delete_content(self, ns: str) -> tuple[dict[str, int], dict[str, int], list[str]]:
        remaining: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        errors: list[str] = []
        emptied = self.emptied.setdefault(ns, set())
        for d in self.resources:
            res = d.res
            label = f"{res.plural}.{res.group}" if res.group else res.plural
            if label in emptied:
                continue
            try:
                if "deletecollection" in d.verbs:
                    await self.api.request("DELETE", res.path(ns), {"propagationPolicy": "Background"},
                                           {"kind": "DeleteOptions", "apiVersion": "v1",
                                            "propagationPolicy": "Background"})
                items, _ = await self.api.list_all(res, ns)
                if "deletecollection" not in d.verbs:
                    for o in items:
                        if not o["metadata"].get("deletionTimestamp"):
                            try:
                                await self.api.delete(res, o["metadata"]["name"], ns)
                            except NotFound:
                                pass
                    items, _ = await self.api.list_all(res, ns)
            except NotFound:
                continue  # the resource went away with a CRD, or the namespace is gone
            except ApiError as e:
                errors.append(f"{label}: {e.message}")
                continue
            if not items:
                emptied.add(label)
            else:
                remaining[label] = len(items)
                for o in items:
                    for f in o["metadata"].get("finalizers") or []:
                        finalizers[f] = finalizers.get(f, 0) + 1
        return remaining, finalizers, errors

    async def report(self, ns: dict, remaining: dict[str, int], finalizers: dict[str, int],
                     errors: list[str]) -> None:
        """The conditions upstream puts on a terminating namespace (`kubectl describe ns`)."""
        failing = {"NamespaceDeletionContentFailure": "Failed to delete all resource types, " + "; ".join(errors),
                   "NamespaceContentRemaining": "Some resources are remaining: " + ", ".join(
                       f"{k} has {v} resource instances" for k, v in sorted(remaining.items())),
                   "NamespaceFinalizersRemaining": "Some content in the namespace has finalizers remaining: "
                   + ", ".join(f"{k} in {v} resource instances" for k, v in sorted(finalizers.items()))}
        true = {"NamespaceDeletionContentFailure": bool(errors), "NamespaceContentRemaining": bool(remaining),
                "NamespaceFinalizersRemaining": bool(finalizers)}
        now = now_rfc3339()
        conds = [{"type": t, "status": "True" if true.get(t) else "False",
                  "lastTransitionTime": now, "reason": r_true if true.get(t) else r_false,
                  "message": failing[t] if true.get(t) else msg}
                 for t, r_true, r_false, msg in CONDITIONS]
        old = {c["type"]: c for c in (ns.get("status") or {}).get("conditions") or []}
        for c in conds:  # keep the transition time of unchanged conditions
            o = old.get(c["type"])
            if o and o.get("status") == c["status"] and o.get("message") == c["message"]:
                c["lastTransitionTime"] = o.get("lastTransitionTime", c["lastTransitionTime"])
        if [old.get(c["type"]) for c in conds] == conds:
            return
        status = {**(ns.get("status") or {}), "phase": "Terminating", "conditions": conds}
        try:
            await self.api.update_status(NAMESPACES, {**ns, "status": status})
        except (Conflict, NotFound):
            pass  # informational only; the next check writes it again

    async def finalize(self, name: str) -> None:
        for _ in range(5):
            try:
                ns = await self.api.get(NAMESPACES, name)
            except NotFound:
                return
            fin = [f for f in (ns.get("spec") or {}).get("finalizers") or [] if f != FINALIZER]
            ns.setdefault("spec", {})["finalizers"] = fin
            try:
                await self.api.update(NAMESPACES, ns, subresource="finalize")
                return
            except NotFound:
                return
            except Conflict:
                continue
        raise Conflict(409, "Conflict", f"namespaces/{name}/finalize kept conflicting")
