"""REST handlers: one HTTP request on a resource path → one verb on the object store.

Paths (the kube-apiserver's):
    /api/v1/<resource>[/<name>[/<subresource>]]                        core, cluster-scoped
    /api/v1/namespaces/<ns>/<resource>[/<name>[/<subresource>]]        core, namespaced
    /apis/<group>/<version>/...                                        other groups, same shape
    /api/v1/<resource> for a namespaced resource                       across all namespaces
Note the one ambiguity: /api/v1/namespaces/<name>/status is the namespace's status subresource,
while /api/v1/namespaces/<ns>/pods is a collection — decided by whether the third segment is a
namespaced resource.

Verbs by method: GET → get | list | watch (watch=true), POST → create (or pods/<p>/binding),
PUT → update, PATCH → patch (by Content-Type; application/apply-patch+yaml is server-side
apply, see fieldmanager/), DELETE → delete | deletecollection. Every write names its field
manager (`fieldManager`, else the user agent) and records it in metadata.managedFields.
Common parameters: dryRun=All (do everything but store), fieldValidation=Strict|Warn|Ignore
(unknown fields: reject, warn in a `Warning: 299` header, or drop; default Warn as upstream).
"""

from __future__ import annotations

import json
import logging

import yaml

from aiohttp import web

from controlplane.apiserver import (
    authorizer, conversion, fieldmanager, patch as patching, serviceaccounts, subresources, tables)
from controlplane.apiserver.errors import (
    APIError, bad_request, forbidden_field, invalid_object, method_not_allowed, not_found_path,
    unsupported_media_type)
from controlplane.apiserver.objects import DeleteOptions, ObjectStore, Page, delete_options
from controlplane.apiserver.requests import (
    JSON, Target, as_bool, as_int, check_accept, check_fields, dry_run, json_response, parse_path,
    read_body, wants_table)
from controlplane.apiserver.resources import CREATE_ONLY_SUBRESOURCES
from controlplane.apiserver.selectors import parse_field_selector, parse_label_selector
from controlplane.apiserver.serviceaccounts import SigningKey
from controlplane.apiserver.watch import WatchRequest, WatchStream
from controlplane.storage.watchcache import Entry

log = logging.getLogger("nodeagent.apiserver")


class Handlers:
    """The resource endpoints; owns nothing but a reference to the object store."""

    def __init__(self, store: ObjectStore, sa_key: SigningKey | None = None):
        self.store = store
        self.sa_key = sa_key              # signs TokenRequests (None: no PKI, none served)

    # ---- dispatch ----

    async def handle(self, request: web.Request) -> web.StreamResponse:
        t = parse_path(request.path)
        if t is None:
            raise not_found_path()
        resp = await self._dispatch(t, request)
        if t.rt.custom is not None and t.rt.custom.warning and not resp.prepared:
            text = t.rt.custom.warning.replace("\\", "\\\\").replace('"', '\\"')
            resp.headers.add("Warning", f'299 - "{text}"')  # a deprecated version
        return resp

    async def _dispatch(self, t: Target, request: web.Request) -> web.StreamResponse:
        check_accept(request.headers.get("Accept", ""))
        m = request.method
        if t.rt.verbs == ("create",):  # bindings and reviews: verbs, not stored objects
            if m != "POST" or t.name:
                raise method_not_allowed()
            body = await read_body(request)
            if t.rt.kind == "Binding":
                return await self._bind(t, body, request)
            return self._review(t, body, request)
        if t.subresource in CREATE_ONLY_SUBRESOURCES:
            if m != "POST":
                raise method_not_allowed()
            body = await read_body(request)
            if t.subresource == "binding":
                return await self._bind(t, body, request)
            if t.subresource == "token":
                return self._token(t, body, request)
            return await self._evict(t, body, request)
        if m == "GET":
            if t.name:
                return self.get(t, request)
            if as_bool(request.query.get("watch")):
                return await self.watch(t, request)
            return await self.list(t, request)
        if m == "POST":
            if t.name:
                raise method_not_allowed()
            return await self.create(t, request)
        if m == "PUT" and t.name:
            return await self.update(t, request)
        if m == "PATCH" and t.name:
            return await self.patch(t, request)
        if m == "DELETE":
            return await (self.delete(t, request) if t.name else self.delete_collection(t, request))
        raise method_not_allowed()

    # ---- verbs ----

    def _render(self, t: Target, obj: dict, request: web.Request, status: int = 200,
                warnings: list[str] | None = None) -> web.Response:
        if t.subresource == "scale":
            obj = subresources.scale_of(t.rt, obj)
        elif wants_table(request.headers.get("Accept", "")):
            obj = tables.for_resource(t.rt, [obj], {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                               request.query.get("includeObject", "Metadata"))
        else:
            obj = conversion.from_storage(t.rt, obj)
        return json_response(obj, status, warnings)

    def get(self, t: Target, request: web.Request) -> web.Response:
        entry = self.store.get(t.rt, t.namespace, t.name)
        return self._render(t, entry.obj, request)

    def _selectors(self, t: Target, request: web.Request):
        text = request.query.get("fieldSelector")
        return (parse_label_selector(request.query.get("labelSelector")),
                t.rt.custom.field_selector(text) if t.rt.custom is not None else  # selectableFields
                parse_field_selector(text, t.rt.kind, t.rt.api_version))

    async def list(self, t: Target, request: web.Request) -> web.StreamResponse:
        if t.subresource:
            raise method_not_allowed()
        labels, fields = self._selectors(t, request)
        # Upstream pages only when limit > 0 (etcd3 store: `paging := Limit > 0`); a negative one is
        # no limit, not an error (it was a 500 here: found by test_fuzz_openapi.py).
        limit = max(as_int(request.query, "limit") or 0, 0)
        rv = request.query.get("resourceVersion", "")
        if rv not in ("", "0"):
            try:
                want = int(rv)
            except ValueError:
                raise bad_request(f'invalid resource version "{rv}"') from None
            if want > self.store.cache.revision:
                raise APIError(504, "Timeout", f"Too large resource version: {want}, current: "
                               f"{self.store.cache.revision}")
        page = await self.store.list(t.rt, t.namespace, labels, fields, limit,
                                     request.query.get("continue", ""))
        list_meta: dict = {"resourceVersion": str(page.revision)}
        if page.continue_token:
            list_meta["continue"] = page.continue_token
            if page.remaining is not None:
                list_meta["remainingItemCount"] = page.remaining
        if wants_table(request.headers.get("Accept", "")):
            objs = [i.obj if isinstance(i, Entry) else i for i in page.items]
            return json_response(tables.for_resource(t.rt, objs, list_meta,
                                                   request.query.get("includeObject", "Metadata")))
        return self._list_body(t, page, list_meta)

    def _list_body(self, t: Target, page: Page, list_meta: dict) -> web.Response:
        # Stitch the list from each object's memoized JSON: LIST of 5000 pods encodes nothing twice.
        head = json.dumps({"kind": t.rt.list_kind, "apiVersion": t.rt.api_version,
                           "metadata": list_meta}, separators=(",", ":"))[:-1]
        parts = []
        view = conversion.converts(t.rt)  # a view: each object in the view's shape
        for i in page.items:
            if view:
                parts.append(conversion.encoded_view(t.rt, i) if isinstance(i, Entry) else
                             json.dumps(conversion.from_storage(t.rt, i), separators=(",", ":")).encode())
            elif isinstance(i, Entry):
                if i.encoded is None:
                    i.encoded = json.dumps(i.obj, separators=(",", ":")).encode()
                parts.append(i.encoded)
            else:
                parts.append(json.dumps(i, separators=(",", ":")).encode())
        body = head.encode() + b',"items":[' + b",".join(parts) + b"]}"
        return web.Response(body=body, content_type=JSON)

    async def watch(self, t: Target, request: web.Request) -> web.StreamResponse:
        q = request.query
        log.debug("watch %s %s", request.path, dict(q))
        labels, fields = self._selectors(t, request)
        sie = q.get("sendInitialEvents")
        bookmarks = as_bool(q.get("allowWatchBookmarks"))
        if sie is not None and as_bool(sie):
            if q.get("resourceVersionMatch") != "NotOlderThan":
                raise APIError(422, "Invalid", "sendInitialEvents: Forbidden: sendInitialEvents is "
                               "forbidden for watch unless resourceVersionMatch is set to NotOlderThan")
            if not bookmarks:
                raise APIError(422, "Invalid", "allowWatchBookmarks: Required value: "
                               "allowWatchBookmarks must be set to true when sendInitialEvents is set")
        elif q.get("resourceVersionMatch"):
            raise APIError(422, "Invalid", "resourceVersionMatch: Forbidden: resourceVersionMatch is "
                           "forbidden for watch unless sendInitialEvents is provided")
        timeout = as_int(q, "timeoutSeconds")
        req = WatchRequest(t.rt, t.namespace, labels, fields, q.get("resourceVersion", ""),
                           as_bool(sie), bookmarks, float(timeout if timeout else 1800),
                           wants_table(request.headers.get("Accept", "")))

        async def prepare() -> web.StreamResponse:
            resp = web.StreamResponse(headers={"Content-Type": JSON, "Cache-Control": "no-cache"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            return resp

        return await WatchStream(self.store, req).serve(request, prepare)

    async def create(self, t: Target, request: web.Request) -> web.Response:
        body = await read_body(request)
        warnings = check_fields(t.rt, body, request)
        for key in ("apiVersion", "kind"):
            want = t.rt.api_version if key == "apiVersion" else t.rt.kind
            if body.get(key) not in (None, "", want):
                raise bad_request(f"the {'API version' if key == 'apiVersion' else 'kind'} in the data "
                                  f"({body.get(key)}) does not match the expected "
                                  f"{'API version' if key == 'apiVersion' else 'kind'} ({want})")
        errs = conversion.validate_create(t.rt, body)
        if errs:
            raise invalid_object(t.rt.kind, t.rt.group, (body.get("metadata") or {}).get("name", ""), errs)
        obj = await self.store.create(t.rt, t.namespace, conversion.to_storage(t.rt, body),
                                      dry_run(request), _writer(t, request, "CreateOptions"))
        return self._render(t, obj, request, 201, warnings)

    async def update(self, t: Target, request: web.Request) -> web.Response:
        body = await read_body(request)
        if t.subresource == "scale":
            check_fields(t.rt, body, request, "io.k8s.api.autoscaling.v1.Scale")
            return await self._update_scale(t, body, request, lambda cur: body)
        warnings = check_fields(t.rt, body, request)
        stored = conversion.to_storage(t.rt, body)
        _, new = await self.store.update(t.rt, t.namespace, t.name, lambda cur: stored, t.subresource,
                                         dry_run(request), writer=_writer(t, request, "UpdateOptions"))
        return self._render(t, new, request, 200, warnings)

    async def _update_scale(self, t: Target, body, request, make_scale) -> web.Response:
        def transform(cur: dict) -> dict:
            scale = make_scale(subresources.scale_of(t.rt, cur))
            rv = (scale.get("metadata") or {}).get("resourceVersion")
            replicas = (scale.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                from controlplane.apiserver.errors import invalid, invalid_object
                raise invalid_object("Scale", "autoscaling", t.name,
                                     [invalid("spec.replicas", replicas, "must be greater than or equal to 0")])
            subresources.set_replicas(t.rt, cur, replicas)
            if rv:
                cur["metadata"]["resourceVersion"] = rv
            else:                          # no precondition: apply to the newest on a race
                cur["metadata"].pop("resourceVersion", None)
            return cur
        _, new = await self.store.update(t.rt, t.namespace, t.name, transform, "",
                                         dry_run(request), writer=_writer(t, request, "UpdateOptions"))
        return json_response(subresources.scale_of(t.rt, new))

    async def patch(self, t: Target, request: web.Request) -> web.Response:
        ctype = request.content_type
        if ctype == "application/apply-patch+yaml":
            return await self.apply(t, request)
        if "force" in request.query:
            raise invalid_object("PatchOptions", "meta.k8s.io", "", [forbidden_field(
                "force", "may not be specified for non-apply patch")])
        if ctype not in ("application/json-patch+json", "application/merge-patch+json",
                         "application/strategic-merge-patch+json"):
            raise unsupported_media_type(ctype)
        if ctype == "application/strategic-merge-patch+json" and t.rt.custom is not None:
            raise unsupported_media_type(ctype, custom=True)  # no patch metadata in a CRD schema
        body = await read_body(request)
        definition = "io.k8s.api.autoscaling.v1.Scale" if t.subresource == "scale" else t.rt.definition
        warnings: list[str] = []

        def apply(cur: dict) -> dict:
            cur = conversion.from_storage(t.rt, cur)
            try:
                if ctype == "application/json-patch+json":
                    out = patching.json_patch(cur, body)
                elif ctype == "application/merge-patch+json":
                    out = patching.merge_patch(cur, body)
                else:
                    out = patching.strategic_merge_patch(cur, body, definition)
            except patching.PatchError as e:
                raise APIError(422 if ctype == "application/json-patch+json" else 400,
                               "Invalid" if ctype == "application/json-patch+json" else "BadRequest",
                               str(e)) from None
            warnings[:] = check_fields(t.rt, out, request, definition)
            # The patch's own resourceVersion is a precondition (409 when stale). Without one,
            # the patch applies to whatever is current: the copy of the current resourceVersion
            # it was applied to must not become a precondition, so that a concurrent write makes
            # the store apply the patch again to the newer object — upstream's patcher retries
            # such patches, it never answers 409 to them (`kubectl set image` relies on it).
            if isinstance(body, dict):
                prv = (body.get("metadata") or {}).get("resourceVersion")
            else:   # a JSON patch: only an operation that changed it makes it a precondition
                prv = (out.get("metadata") or {}).get("resourceVersion")
                if prv == cur["metadata"].get("resourceVersion"):
                    prv = None
            md = out.setdefault("metadata", {})
            if prv:
                md["resourceVersion"] = prv
            else:
                md.pop("resourceVersion", None)
            return conversion.to_storage(t.rt, out)

        if t.subresource == "scale":
            return await self._update_scale(t, body, request, apply)
        _, new = await self.store.update(t.rt, t.namespace, t.name, apply, t.subresource,
                                         dry_run(request), writer=_writer(t, request, "PatchOptions"))
        return self._render(t, new, request, 200, warnings)

    async def apply(self, t: Target, request: web.Request) -> web.Response:
        """Server-side apply: PATCH with an applied configuration (YAML or JSON). Creates the
        object when it is absent (201), as upstream's patcher does for apply."""
        fieldmanager.require_apply_manager(request.query.get("fieldManager"))
        if t.subresource not in ("", "status"):
            raise unsupported_media_type(f"application/apply-patch+yaml on the {t.subresource} "
                                         f"subresource")
        config = _decode_yaml(await request.read())
        fieldmanager.check_config(t.rt, config, t.name, t.namespace)
        warnings = check_fields(t.rt, config, request)
        writer = fieldmanager.Writer(
            _writer(t, request, "PatchOptions").manager, fieldmanager.APPLY, t.rt.api_version,
            t.subresource, as_bool(request.query.get("force")))
        precondition = config["metadata"].get("resourceVersion")

        def transform(cur: dict) -> dict:
            out = fieldmanager.apply(t.rt, conversion.from_storage(t.rt, cur), config, writer)
            md = out["metadata"]
            if precondition:  # the config's resourceVersion is a precondition; none: newest
                md["resourceVersion"] = precondition
            else:
                md.pop("resourceVersion", None)
            return conversion.to_storage(t.rt, out)

        for _ in range(2):  # absent → create; a create that lost a race → apply again
            if self.store.cache.get(t.rt.key(t.namespace, t.name)) is None and not t.subresource:
                obj = fieldmanager.apply(t.rt, None, config, writer)
                obj["metadata"].pop("resourceVersion", None)
                try:
                    new = await self.store.create(t.rt, t.namespace, conversion.to_storage(t.rt, obj),
                                                  dry_run(request), writer)
                except APIError as e:
                    if e.code == 409 and e.reason == "AlreadyExists":
                        continue
                    raise
                return self._render(t, new, request, 201, warnings)
            _, new = await self.store.update(t.rt, t.namespace, t.name, transform, t.subresource,
                                             dry_run(request), writer=writer)
            return self._render(t, new, request, 200, warnings)
        raise APIError(409, "Conflict", "the object was created and deleted while it was applied; "
                       "try again")

    async def _delete_options(self, request: web.Request) -> DeleteOptions:
        """DeleteOptions come from the body when there is one, else from the query — never
        mixed (upstream's delete handler decodes one or the other). kubectl sends a body."""
        raw = await request.read() if request.can_read_body else b""
        if raw.strip():
            try:
                body = yaml.safe_load(raw) if request.content_type in ("application/yaml",) \
                    else json.loads(raw)
            except (ValueError, yaml.YAMLError) as e:
                raise bad_request(f"DeleteOptions could not be decoded: {e}") from None
            if not isinstance(body, dict):
                raise bad_request("DeleteOptions must be a JSON object")
            return delete_options(body)
        q = request.query
        return delete_options({"gracePeriodSeconds": as_int(q, "gracePeriodSeconds"),
                               "propagationPolicy": q.get("propagationPolicy"),
                               "orphanDependents": q.get("orphanDependents"),
                               "dryRun": q.getall("dryRun", [])})

    async def delete(self, t: Target, request: web.Request) -> web.Response:
        if t.subresource:
            raise method_not_allowed()
        opts = await self._delete_options(request)
        obj = await self.store.delete(t.rt, t.namespace, t.name, opts)
        return self._render(t, obj, request)

    async def delete_collection(self, t: Target, request: web.Request) -> web.Response:
        opts = await self._delete_options(request)
        labels, fields = self._selectors(t, request)
        page = await self.store.list(t.rt, t.namespace, labels, fields)
        deleted = []
        for e in page.items:
            md = e.obj["metadata"] if isinstance(e, Entry) else e["metadata"]
            try:
                deleted.append(conversion.from_storage(
                    t.rt, await self.store.delete(t.rt, md.get("namespace"), md["name"], opts)))
            except APIError as err:
                if err.code != 404:
                    raise
        return json_response({"kind": t.rt.list_kind, "apiVersion": t.rt.api_version,
                                   "metadata": {"resourceVersion": str(self.store.cache.revision)},
                                   "items": deleted})

    async def _bind(self, t: Target, body, request: web.Request) -> web.Response:
        if not isinstance(body, dict):
            raise bad_request("Binding must be a JSON object")
        check_fields(t.rt, body, request, "io.k8s.api.core.v1.Binding")
        name = t.name if t.subresource == "binding" else (body.get("metadata") or {}).get("name", "")
        await subresources.bind(self.store, t.namespace or "default", name, body, dry_run(request))
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                   "status": "Success", "code": 201}, 201)

    async def _evict(self, t: Target, body, request: web.Request) -> web.Response:
        """POST pods/<p>/eviction: a delete that a PodDisruptionBudget may refuse with 429.
        `kubectl drain` evicts through it."""
        if not isinstance(body, dict):
            raise bad_request("Eviction must be a JSON object")
        check_fields(t.rt, body, request, "io.k8s.api.policy.v1.Eviction")
        name = (body.get("metadata") or {}).get("name")
        if name and name != t.name:
            raise bad_request("name in URL does not match name in Eviction object")
        opts = delete_options(body.get("deleteOptions") or {}, dry_run(request))
        await subresources.evict(self.store, t.namespace or "default", t.name, opts)
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                              "status": "Success", "code": 201}, 201)

    def _token(self, t: Target, body, request: web.Request) -> web.Response:
        """POST serviceaccounts/<sa>/token: a TokenRequest (serviceaccounts.py)."""
        check_fields(t.rt, body, request, "io.k8s.api.authentication.v1.TokenRequest")
        if self.sa_key is None:
            raise method_not_allowed()
        out = serviceaccounts.token_request(self.sa_key, self.store.cache, t.namespace or "default",
                                            t.name, body)
        return json_response(out, 201)

    def _review(self, t: Target, body, request: web.Request) -> web.Response:
        """The admin token may do everything, as system:masters may; a service account (a user
        set by server.py) only what authorizer.py lets an unbound user do."""
        check_fields(t.rt, body, request)
        out = {"kind": t.rt.kind, "apiVersion": t.rt.api_version,
               "metadata": {"creationTimestamp": None}}
        if t.rt.kind == "SelfSubjectAccessReview":
            out["spec"] = body.get("spec") or {}
            if request.get("user"):
                allowed = authorizer.allows(out["spec"])
                out["status"] = {"allowed": allowed} if allowed else {"allowed": False}
            else:
                out["status"] = {"allowed": True,
                                 "reason": "the admin token is in group system:masters"}
        elif request.get("user"):  # a service-account token (server.py)
            out["status"] = {"userInfo": request["user"]}
        else:
            out["status"] = {"userInfo": {"username": "kubernetes-admin",
                                          "groups": ["system:masters", "system:authenticated"]}}
        return json_response(out, 201)


def _decode_yaml(raw: bytes):
    """An apply body: YAML, which JSON is a part of. Clients mostly send JSON (kubectl does),
    which json decodes far faster than a YAML parser; libyaml's loader for the rest."""
    if not raw.strip():
        return None
    if raw.lstrip()[:1] == b"{":
        try:
            return json.loads(raw)
        except ValueError:
            pass  # YAML flow style, not JSON
    try:
        return yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        raise bad_request(f"error decoding YAML: {e}") from None


def _writer(t: Target, request: web.Request, options_kind: str) -> fieldmanager.Writer:
    """The field manager of a write: `fieldManager`, else the user agent's product name."""
    name = fieldmanager.manager_name(request.query.get("fieldManager"),
                                     request.headers.get("User-Agent", ""), options_kind)
    return fieldmanager.Writer(name, fieldmanager.UPDATE, t.rt.api_version,
                               t.subresource if t.subresource in ("status", "scale") else "")


__all__ = ["Handlers", "parse_path"]
