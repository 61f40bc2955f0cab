"""controlplane.controllers — kube-controller-manager's controllers, one module each.

Place in the layer map (DEVELOPERS.md):

    controlplane.controllers ──► apiclient ──► the API server (ours or any other)

Controllers are API clients and nothing else: they watch objects through shared informers and
write through the REST API, exactly as kube-controller-manager does, so they would run against a
real cluster too. They never import controlplane.apiserver.

    manager.py          which controllers run; leader election (controlplane/leaderelection.py);
                        one fresh set of informers and controllers per term of leadership
    base.py             Controller (queue → workers → sync(key)), options, Events
    queue.py            the rate-limited work queue (per-key backoff)
    informers.py        shared informers with namespace and owner indexes
    expectations.py     "creations/deletions asked for, not yet seen" (ReplicaSet, DaemonSet)
    meta.py             selectors, owner references, pod state, times

    replicaset.py  deployment.py  daemonset.py  statefulset.py  job.py  cronjob.py (+ cron.py)
    ttlafterfinished.py  nodelifecycle.py  nodeipam.py  endpoint.py  endpointslice.py
    serviceaccount.py (+ the root CA ConfigMap)  namespace.py  garbagecollector.py  podgc.py
    disruption.py (PodDisruptionBudget status: what eviction and preemption read)

Run them in-process with `run_controllers(api, enabled)` (nodeagent server/up), or as their own
process with `python -m controlplane.controllers --kubeconfig K` (kube-controller-manager's flags).

May import: apiclient, controlplane.leaderelection, the standard library.
"""

from controlplane.controllers.base import ControllerOptions
from controlplane.controllers.manager import KNOWN, run_controllers

__all__ = ["ControllerOptions", "KNOWN", "run_controllers"]
