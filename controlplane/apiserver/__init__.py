"""controlplane.apiserver — a Kubernetes API server: the real REST protocol over our storage.

Layers, from the wire inward (each module opens with what it does):

    server.py       the process: TLS, bearer-token authentication, routing, Status errors
    certs.py, kubeconfig.py, bootstrap.py    PKI and admin kubeconfig; default namespaces and
                    the `kubernetes` service
    discovery.py    /version, /api, /apis (legacy and aggregated discovery)
    openapi/        /openapi/v2 and /openapi/v3, built from the upstream definitions
    handlers.py     one REST request → one verb (get/list/create/update/patch/delete/watch)
    requests.py     path → target, body decoding (JSON, YAML, protobuf/), field validation
    watch.py        watch streams: resume, bookmarks, watch-list (sendInitialEvents), 410 Gone
    tables.py       server-side printing (`as=Table`): the columns `kubectl get` shows
    objects.py      the generic registry: object semantics (uid, generateName, resourceVersion,
                    generation, finalizers, graceful deletion) on the watch cache + storage
    strategy.py     what differs per kind in the registry (upstream's registry/<kind>/strategy.go)
    namespaces.py, subresources.py, allocator.py    namespace termination; scale, binding and
                    eviction (PodDisruptionBudgets); Service ClusterIP/NodePort allocation
    admission.py    Priority admission (pods, PriorityClasses)
    webhooks.py     admission webhooks from admissionregistration.k8s.io, called over HTTPS
    apiextensions/  CustomResourceDefinitions: resources added while the server runs, their
                    schemas (validation, defaults, pruning), tables, OpenAPI and cleanup
    conversion.py   views stored as another resource: events.k8s.io/v1 Events (core Events),
                    autoscaling/v1 HorizontalPodAutoscalers (stored as v2)
    defaults.py, validation.py, validation_apps.py, validation_config.py, cron.py, schema.py
                    what a write must look like
    patch.py        JSON patch, merge patch, strategic merge patch
    selectors.py    label and field selectors
    codec.py        stored form of objects (resourceVersion = storage revision)
    resources.py    the table of resource types we serve
    errors.py       APIError → Status

May import: controlplane.storage, localfs, the standard library, aiohttp, pyyaml. Never nodeagent, runtime,
network or cni (import-linter checks it).
"""
