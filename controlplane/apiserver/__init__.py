"""controlplane.apiserver — a Kubernetes API server: the real REST protocol over our storage.

Layers, from the wire inward (each module opens with what it does):

    server.py       aiohttp app: TLS, bearer-token authentication, routing, Status errors
    handlers.py     one REST request → one verb (get/list/create/update/patch/delete/watch)
    watch.py        watch streams: resume, bookmarks, watch-list (sendInitialEvents), 410 Gone
    discovery.py    /version, /api, /apis (legacy and aggregated discovery)
    openapi/        /openapi/v2 and /openapi/v3, built from the upstream definitions
    tables.py       server-side printing (`as=Table`): the columns `kubectl get` shows
    objects.py      the generic registry: object semantics (uid, generateName, resourceVersion,
                    generation, finalizers, graceful deletion) on top of the watch cache + storage
    defaults.py, validation.py, schema.py    what a write must look like
    patch.py        JSON patch, merge patch, strategic merge patch
    selectors.py    label and field selectors
    resources.py    the table of resource types we serve
    errors.py       APIError → Status

May import: controlplane.storage, the standard library, aiohttp, pyyaml. Never nodeagent, runtime,
network or cni (import-linter checks it).
"""
