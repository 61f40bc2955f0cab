"""controlplane — the bundled API server, its storage, the scheduler and the controllers.

Place in the layer map (DEVELOPERS.md):

    controlplane ──► apiclient          controlplane never imports the agent or the node's machinery.

It talks to nodes only through the API, as the real control plane does: a node agent is just
another client that watches pods and writes their status.

What is here (each opens with its own map):

    apiserver/        the API server: REST, watch, discovery, OpenAPI, tables, admission, webhooks,
                      per-kind strategies (strategy.py), namespace termination (namespaces.py)
    storage/          the Storage interface, its SQLite implementation, the watch cache
    scheduler/        kube-scheduler: queue, cache, the framework and its default plugins,
                      preemption, binding
    controllers/      kube-controller-manager's controllers (deployment, replicaset, statefulset,
                      daemonset, job, cronjob, endpoints, endpointslices, namespace, garbage
                      collector, node lifecycle and IPAM, pod GC, service accounts, TTL) and their
                      shared informers, work queues and expectations
    components.py     which of the scheduler and the controllers a control plane runs (flags)
    leaderelection.py one Lease per part, so several control planes do each piece of work once

Started by `nodeagent server` (a control plane alone) or `nodeagent up` (with an agent).

May import: apiclient, localfs, the standard library, aiohttp, pyyaml. Never nodeagent, runtime,
network, cni.
"""
