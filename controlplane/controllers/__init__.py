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

    replicaset.py  deployment.py  daemonset.py  nodelifecycle.py  nodeipam.py  endpoint.py
    endpointslice.py  serviceaccount.py (+ root CA ConfigMap)  namespace.py  garbagecollector.py
    podgc.py

May import: apiclient, controlplane.leaderelection, the standard library.
"""

from controlplane.controllers.base import ControllerOptions
from controlplane.controllers.manager import KNOWN, run_controllers

__all__ = ["ControllerOptions", "KNOWN", "run_controllers"]
