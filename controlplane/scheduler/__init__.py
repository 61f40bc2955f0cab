"""controlplane.scheduler — the scheduler: a Node for every pending pod, as kube-scheduler picks it.

Place in the layer map (DEVELOPERS.md): it talks to the API server only through apiclient, like
any kube-scheduler, so it runs inside `nodeagent server`/`up` or as its own process
(`python -m controlplane.scheduler --kubeconfig ...`). May import: apiclient,
controlplane.leaderelection, the standard library. Never nodeagent, runtime, network, cni, nor
the API server's internals.

One concept per module:

    podinfo.py      a pod parsed once: requests, ports, tolerations, compiled selectors
    labels.py       label selectors and node selector terms
    quantity.py     "500m", "1Gi" → ints
    nodeinfo.py     one node and the totals of the pods on it
    cache.py        all nodes, bound and *assumed* pods (no over-commit while binding)
    queue.py        active / backoff / unschedulable, moved by cluster events
    framework/      filters and scores as upstream's plugins, with upstream's weights
    algorithm.py    one attempt: filter, score, pick; the FitError message
    preemption.py   evict lower-priority pods when nothing fits
    binder.py       bindings and status writes; events.py: Scheduled / FailedScheduling
    scheduler.py    the loop and the informer handlers
    __main__.py     a stand-alone kube-scheduler-like process (tests, benchmarks, HA)

`run_scheduler` is leader-elected through the Lease kube-system/kube-scheduler, so several
control-plane replicas may run it and only one schedules.
"""

from __future__ import annotations

import logging

from apiclient import ApiClient

log = logging.getLogger("nodeagent.scheduler")

LEASE_NAMESPACE = "kube-system"
LEASE_NAME = "kube-scheduler"


async def run_scheduler(api: ApiClient, *, name: str = "default-scheduler", leader_elect: bool = True,
                        identity: str | None = None, lease_name: str = LEASE_NAME) -> None:
    """Schedule pods whose spec.schedulerName is `name` until cancelled."""
    from controlplane.scheduler.scheduler import Scheduler

    if not leader_elect:
        await Scheduler(api, name).run()
        return
    from controlplane.leaderelection import LeaderElectionConfig, LeaderElector, default_identity

    elector = LeaderElector(api, LeaderElectionConfig(LEASE_NAMESPACE, lease_name, identity or default_identity()))
    await elector.run(lambda: Scheduler(api, name).run())


__all__ = ["run_scheduler"]
