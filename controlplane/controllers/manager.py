"""The controller manager: pick the enabled controllers, win the Lease, run them on shared informers.

    run_controllers(api, enabled)     enabled: None = all, or kube-controller-manager's --controllers
                                      items ({"*", "-nodeipam"}, {"replicaset", "deployment"})

Every term of leadership starts from nothing: discovery, fresh informers (a full list), fresh
controllers. Nothing from a previous term — expectations, queues, caches — can leak into the next
one, which is what makes "the other replica takes over and nothing is done twice" hold: the new
leader's first sync reads the same API state the old one left.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from dataclasses import replace

from apiclient import ApiClient, ApiError, Resource

from controlplane.controllers.base import Context, ControllerOptions, DiscoveredResource, EventRecorder
from controlplane.controllers.informers import SharedInformers
from controlplane.leaderelection import LeaderElectionConfig, LeaderElector, default_identity

log = logging.getLogger("nodeagent.controllers")

LEASE_NAMESPACE, LEASE_NAME = "kube-system", "kube-controller-manager"

# kube-controller-manager's names, in its order; the value names the module and class.
KNOWN = ("replicaset", "deployment", "daemonset", "job", "cronjob", "statefulset", "disruption", "nodelifecycle",
         "nodeipam", "endpoint", "endpointslice", "serviceaccount", "root-ca-cert-publisher",
         "namespace", "garbagecollector", "podgc", "ttl-after-finished")


# name → "module:Class" under controlplane.controllers, imported only when enabled.
CLASSES = {
    "replicaset": "replicaset:ReplicaSetController",
    "deployment": "deployment:DeploymentController",
    "daemonset": "daemonset:DaemonSetController",
    "job": "job:JobController",
    "cronjob": "cronjob:CronJobController",
    "statefulset": "statefulset:StatefulSetController",
    "disruption": "disruption:DisruptionController",
    "nodelifecycle": "nodelifecycle:NodeLifecycleController",
    "nodeipam": "nodeipam:NodeIpamController",
    "endpoint": "endpoint:EndpointsController",
    "endpointslice": "endpointslice:EndpointSliceController",
    "serviceaccount": "serviceaccount:ServiceAccountsController",
    "root-ca-cert-publisher": "serviceaccount:RootCACertPublisher",
    "namespace": "namespace:NamespaceController",
    "garbagecollector": "garbagecollector:GarbageCollector",
    "podgc": "podgc:PodGCController",
    "ttl-after-finished": "ttlafterfinished:TTLAfterFinishedController",
}


def load_class(name: str) -> type | None:
    """The controller class, or None if this version does not have that module."""
    module, _, cls = CLASSES[name].partition(":")
    try:
        mod = importlib.import_module(f"controlplane.controllers.{module}")
    except ModuleNotFoundError as e:
        if e.name != f"controlplane.controllers.{module}":
            raise
        return None
    return getattr(mod, cls)


def resolve(enabled: set[str] | None) -> list[str]:
    """kube-controller-manager's rule: `*` all (of the default-on ones), `name` on, `-name` off."""
    if enabled is None:
        return list(KNOWN)
    unknown = {e.lstrip("-") for e in enabled} - set(KNOWN) - {"*"}
    if unknown:
        raise ValueError(f"--controllers: unknown controller(s): {', '.join(sorted(unknown))}")
    star = "*" in enabled
    return [n for n in KNOWN if f"-{n}" not in enabled and (star or n in enabled)]


async def discover(api: ApiClient) -> list[DiscoveredResource]:
    """The served collections (preferred version of each group), as kubectl api-resources lists
    them; subresources left out."""
    out: list[DiscoveredResource] = []

    def add(group: str, version: str, doc: dict) -> None:
        for r in doc.get("resources") or []:
            if "/" in r["name"]:
                continue
            out.append(DiscoveredResource(Resource(group, version, r["name"], bool(r.get("namespaced"))),
                                          r.get("kind", ""), tuple(r.get("verbs") or ())))
    add("", "v1", await api.request("GET", "/api/v1"))
    groups = await api.request("GET", "/apis")
    for g in groups.get("groups") or []:
        gv = (g.get("preferredVersion") or {}).get("groupVersion") or g["versions"][0]["groupVersion"]
        group, version = gv.split("/")
        add(group, version, await api.request("GET", f"/apis/{gv}"))
    return out


async def run_term(api: ApiClient, names: list[str], options: ControllerOptions,
                   started: asyncio.Event | None = None) -> None:
    """One term of leadership: build everything fresh and run until cancelled."""
    informers = SharedInformers(api)
    ctx = Context(api, informers, options, EventRecorder(api))
    ctx.discovered = await discover(api)
    served = {(d.res.group, d.res.plural) for d in ctx.discovered}
    controllers = []
    for n in names:
        cls = load_class(n)
        if cls is None:
            log.info("controller %s: not built in this version; skipped", n)
            continue
        need = getattr(cls, "requires", ())
        missing = [f"{g or 'core'}/{p}" for g, p in need if (g, p) not in served]
        if missing:
            log.warning("controller %s: the API server does not serve %s; skipped", n, ", ".join(missing))
            continue
        controllers.append(cls(ctx))
    informers.start()
    try:
        await informers.wait_synced()
        log.info("controllers running: %s", ", ".join(c.name for c in controllers))
        if started is not None:
            started.set()
        await asyncio.gather(*(c.run() for c in controllers))
    finally:
        ctx.events.close()
        await informers.stop()


async def run_controllers(api: ApiClient, enabled: set[str] | None = None,
                          options: ControllerOptions | None = None) -> None:
    """Run the enabled controllers until cancelled, under the Lease kube-system/kube-controller-manager."""
    options = options or ControllerOptions()
    if not options.identity:
        options = replace(options, identity=default_identity())
    names = resolve(enabled)
    if not options.leader_elect:
        await run_term(api, names, options)
        return
    elector = LeaderElector(api, LeaderElectionConfig(
        LEASE_NAMESPACE, LEASE_NAME, options.identity, options.lease_duration, options.renew_deadline,
        options.retry_period))
    while True:
        try:
            await elector.run(lambda: run_term(api, names, options))
            return
        except ApiError as e:  # discovery or the first list failed: campaign again shortly
            log.warning("controllers: %s; starting over", e)
            await asyncio.sleep(options.retry_period)
