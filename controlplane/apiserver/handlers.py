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
PUT → update, PATCH → patch (by Content-Type), DELETE → delete | deletecollection.
Common parameters: dryRun=All (do everything but store), fieldValidation=Strict|Warn|Ignore
(unknown fields: reject, warn in a `Warning: 299` header, or drop; default Warn as upstream).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import yaml
from aiohttp import web

from controlplane.apiserver import discovery, patch as patching, schema, subresources, tables
from controlplane.apiserver.errors import (
    APIError, bad_request, method_not_allowed, not_acceptable, not_found, unsupported_media_type)
from controlplane.apiserver.objects import DeleteOptions, ObjectStore, Page
from controlplane.apiserver.resources import REGISTRY, ResourceType
from controlplane.apiserver.selectors import parse_field_selector, parse_label_selector
from controlplane.apiserver.watch import WatchRequest, WatchStream
from controlplane.storage.watchcache import Entry

JSON = "application/json"
log = logging.getLogger("nodeagent.apiserver")


@dataclass(frozen=True)
class Target:
    rt: ResourceType
    namespace: str | None
    name: str
    subresource: str


def parse_path(path: str) -> Target | None:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    ns = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        rt = REGISTRY.lookup(group, version, rest[2])
        if rt is not None and rt.namespaced:
            ns, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    rt = REGISTRY.lookup(group, version, rest[0])
    if rt is None:
        return None
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if sub and sub not in rt.subresources:
        return None
    return Target(rt, ns, name, sub)


def _bool(v: str | None) -> bool:
    return v is not None and v.lower() in ("true", "1")


def _int(q, name: str) -> int | None:
    v = q.get(name)
    if v in (None, ""):
        return None
    try:
        return int(v)
    except ValueError:
        raise bad_request(f'invalid value for {name}: "{v}": must be an integer') from None


def _wants_table(accept: str) -> bool:
    return any("as=Table" in part and "g=meta.k8s.io" in part for part in accept.split(","))


def _check_accept(accept: str) -> None:
    """We speak JSON (and YAML). A client that accepts nothing else gets 406, as upstream."""
    if not accept:
        return
    for part in accept.split(","):
        mt = part.split(";")[0].strip()
        if mt in ("*/*", "application/*", JSON, "application/yaml", "application/json-patch+json",
                  "application/merge-patch+json", "application/strategic-merge-patch+json") or \
                "as=Table" in part:
            return
    raise not_acceptable("only the following media types are accepted: application/json, "
                         "application/yaml")


class Handlers:
    def __init__(self, store: ObjectStore, advertise: str):
        self.store = store
        self.advertise = advertise

    # ---- helpers ----

    def json_response(self, obj, status: int = 200, warnings: list[str] | None = None) -> web.Response:
        resp = web.Response(body=json.dumps(obj, separators=(",", ":")).encode(), status=status,
                            content_type=JSON)
        for w in warnings or []:
            resp.headers.add("Warning", f'299 - "{w}"')
        return resp

    async def read_body(self, request: web.Request) -> object:
        raw = await request.read()
        ctype = request.content_type
        if not raw:
            raise bad_request("the request body is empty")
        try:
            if ctype in ("application/yaml", "application/x-yaml"):
                return yaml.safe_load(raw)
            if ctype == "application/vnd.kubernetes.protobuf":
                from controlplane.apiserver import protobuf  # only kubectl's typed clients send it
                return protobuf.decode(raw)
            if ctype in (JSON, "application/json-patch+json", "application/merge-patch+json",
                         "application/strategic-merge-patch+json", "application/octet-stream", ""):
                return json.loads(raw)
        except (ValueError, yaml.YAMLError) as e:
            raise bad_request(f"the body of the request could not be decoded: {e}") from None
        raise unsupported_media_type(ctype)

    def check_fields(self, rt: ResourceType, obj: object, request: web.Request,
                     definition: str | None = None) -> list[str]:
        """Types and unknown fields against the upstream schema; returns warnings (Warn mode)."""
        definition = definition or rt.definition
        if not isinstance(obj, dict):
            raise bad_request(f"{rt.kind} in version \"{rt.version}\" cannot be handled as a "
                              f"{rt.kind}: the body must be a JSON object")
        mode = request.query.get("fieldValidation") or "Warn"
        if mode not in ("Strict", "Warn", "Ignore"):
            raise bad_request(f'fieldValidation: Unsupported value: "{mode}": supported values: '
                              f'"Ignore", "Strict", "Warn"')
        res = schema.check(definition, obj)
        prefix = f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
        if res.type_errors:
            path, what = res.type_errors[0]
            raise bad_request(prefix + f"json: cannot decode field \"{path}\": {what}")
        if not res.unknown or mode == "Ignore":
            return []
        if mode == "Strict":
            text = ", ".join(f'unknown field "{u}"' for u in res.unknown)
            raise bad_request(prefix + "strict decoding error: " + text)
        return [f'unknown field "{u}"' for u in res.unknown]

    @staticmethod
    def dry_run(request: web.Request) -> bool:
        values = request.query.getall("dryRun", [])
        for v in values:
            if v != "All":
                raise bad_request(f'dryRun: Unsupported value: "{v}": supported values: "All"')
        return bool(values)

    # ---- dispatch ----

    async def handle(self, request: web.Request) -> web.StreamResponse:
        t = parse_path(request.path)
        if t is None:
            raise APIError(404, "NotFound", "the server could not find the requested resource",
                           {})
        _check_accept(request.headers.get("Accept", ""))
        m = request.method
        if t.rt.verbs == ("create",):  # bindings and reviews: verbs, not stored objects
            if m != "POST" or t.name:
                raise method_not_allowed()
            body = await self.read_body(request)
            if t.rt.kind == "Binding":
                return await self._bind(t, body, request)
            return self._review(t, body, request)
        if m == "GET":
            if t.name:
                return self.get(t, request)
            if _bool(request.query.get("watch")):
                return await self.watch(t, request)
            return await self.list(t, request)
        if m == "POST":
            if t.subresource == "binding":
                return await self._bind(t, await self.read_body(request), request)
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
        elif _wants_table(request.headers.get("Accept", "")):
            obj = tables.table(t.rt.kind, [obj], {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                               request.query.get("includeObject", "Metadata"))
        return self.json_response(obj, status, warnings)

    def get(self, t: Target, request: web.Request) -> web.Response:
        if t.subresource == "binding":
            raise method_not_allowed()
        entry = self.store.get(t.rt, t.namespace, t.name)
        return self._render(t, entry.obj, request)

    def _selectors(self, t: Target, request: web.Request):
        return (parse_label_selector(request.query.get("labelSelector")),
                parse_field_selector(request.query.get("fieldSelector"), t.rt.kind, t.rt.api_version))

    async def list(self, t: Target, request: web.Request) -> web.StreamResponse:
        if t.subresource:
            raise method_not_allowed()
        labels, fields = self._selectors(t, request)
        limit = _int(request.query, "limit") or 0
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
        if _wants_table(request.headers.get("Accept", "")):
            objs = [i.obj if isinstance(i, Entry) else i for i in page.items]
            return self.json_response(tables.table(t.rt.kind, objs, list_meta,
                                                   request.query.get("includeObject", "Metadata")))
        return self._list_body(t, page, list_meta)

    def _list_body(self, t: Target, page: Page, list_meta: dict) -> web.Response:
        # Stitch the list from each object's memoized JSON: LIST of 5000 pods encodes nothing twice.
        head = json.dumps({"kind": t.rt.list_kind, "apiVersion": t.rt.api_version,
                           "metadata": list_meta}, separators=(",", ":"))[:-1]
        parts = []
        for i in page.items:
            if isinstance(i, Entry):
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
        bookmarks = _bool(q.get("allowWatchBookmarks"))
        if sie is not None and _bool(sie):
            if q.get("resourceVersionMatch") != "NotOlderThan":
                raise APIError(422, "Invalid", "sendInitialEvents: Forbidden: sendInitialEvents is "
                               "forbidden for watch unless resourceVersionMatch is set to NotOlderThan")
            if not bookmarks:
                raise APIError(422, "Invalid", "allowWatchBookmarks: Required value: "
                               "allowWatchBookmarks must be set to true when sendInitialEvents is set")
        elif q.get("resourceVersionMatch"):
            raise APIError(422, "Invalid", "resourceVersionMatch: Forbidden: resourceVersionMatch is "
                           "forbidden for watch unless sendInitialEvents is provided")
        timeout = _int(q, "timeoutSeconds")
        req = WatchRequest(t.rt, t.namespace, labels, fields, q.get("resourceVersion", ""),
                           _bool(sie), bookmarks, float(timeout if timeout else 1800),
                           _wants_table(request.headers.get("Accept", "")))

        async def prepare() -> web.StreamResponse:
            resp = web.StreamResponse(headers={"Content-Type": JSON, "Cache-Control": "no-cache"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            return resp

        return await WatchStream(self.store, req).serve(request, prepare)

    async def create(self, t: Target, request: web.Request) -> web.Response:
        body = await self.read_body(request)
        warnings = self.check_fields(t.rt, body, request)
        for key in ("apiVersion", "kind"):
            want = t.rt.api_version if key == "apiVersion" else t.rt.kind
            if body.get(key) not in (None, "", want):
                raise bad_request(f"the {'API version' if key == 'apiVersion' else 'kind'} in the data "
                                  f"({body.get(key)}) does not match the expected "
                                  f"{'API version' if key == 'apiVersion' else 'kind'} ({want})")
        obj = await self.store.create(t.rt, t.namespace, body, self.dry_run(request))
        return self._render(t, obj, request, 201, warnings)

    async def update(self, t: Target, request: web.Request) -> web.Response:
        body = await self.read_body(request)
        if t.subresource == "scale":
            self.check_fields(t.rt, body, request, "io.k8s.api.autoscaling.v1.Scale")
            return await self._update_scale(t, body, request, lambda cur: body)
        warnings = self.check_fields(t.rt, body, request)
        _, new = await self.store.update(t.rt, t.namespace, t.name, lambda cur: body, t.subresource,
                                         self.dry_run(request))
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
            cur.setdefault("spec", {})["replicas"] = replicas
            if rv:
                cur["metadata"]["resourceVersion"] = rv
            return cur
        _, new = await self.store.update(t.rt, t.namespace, t.name, transform, "",
                                         self.dry_run(request))
        return self.json_response(subresources.scale_of(t.rt, new))

    async def patch(self, t: Target, request: web.Request) -> web.Response:
        ctype = request.content_type
        if ctype == "application/apply-patch+yaml":
            raise unsupported_media_type(ctype + " (server-side apply is not supported yet; use "
                                         "client-side `kubectl apply`)")
        if ctype not in ("application/json-patch+json", "application/merge-patch+json",
                         "application/strategic-merge-patch+json"):
            raise unsupported_media_type(ctype)
        body = await self.read_body(request)
        definition = "io.k8s.api.autoscaling.v1.Scale" if t.subresource == "scale" else t.rt.definition
        warnings: list[str] = []

        def apply(cur: dict) -> dict:
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
            warnings[:] = self.check_fields(t.rt, out, request, definition)
            # A patch that does not mention resourceVersion must not be turned into a
            # precondition by the copy of the current one it was applied to.
            prv = (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
            out.setdefault("metadata", {})["resourceVersion"] = prv or cur["metadata"]["resourceVersion"]
            return out

        if t.subresource == "scale":
            return await self._update_scale(t, body, request, apply)
        _, new = await self.store.update(t.rt, t.namespace, t.name, apply, t.subresource,
                                         self.dry_run(request))
        return self._render(t, new, request, 200, warnings)

    async def _delete_options(self, request: web.Request) -> DeleteOptions:
        q = request.query
        body: dict = {}
        if request.can_read_body:
            raw = await request.read()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError as e:
                    raise bad_request(f"DeleteOptions could not be decoded: {e}") from None
                if not isinstance(body, dict):
                    raise bad_request("DeleteOptions must be a JSON object")
        grace = _int(q, "gracePeriodSeconds")
        if grace is None and isinstance(body.get("gracePeriodSeconds"), int):
            grace = body["gracePeriodSeconds"]
        pre = body.get("preconditions") or {}
        if body.get("dryRun"):
            for v in body["dryRun"]:
                if v != "All":
                    raise bad_request(f'dryRun: Unsupported value: "{v}": supported values: "All"')
        return DeleteOptions(grace, pre.get("uid"), pre.get("resourceVersion"),
                             q.get("propagationPolicy") or body.get("propagationPolicy"))

    async def delete(self, t: Target, request: web.Request) -> web.Response:
        if t.subresource:
            raise method_not_allowed()
        opts = await self._delete_options(request)
        obj = await self.store.delete(t.rt, t.namespace, t.name, opts, self.dry_run(request))
        return self._render(t, obj, request)

    async def delete_collection(self, t: Target, request: web.Request) -> web.Response:
        opts = await self._delete_options(request)
        labels, fields = self._selectors(t, request)
        page = await self.store.list(t.rt, t.namespace, labels, fields)
        dry = self.dry_run(request)
        deleted = []
        for e in page.items:
            md = e.obj["metadata"] if isinstance(e, Entry) else e["metadata"]
            try:
                deleted.append(await self.store.delete(t.rt, md.get("namespace"), md["name"], opts, dry))
            except APIError as err:
                if err.code != 404:
                    raise
        return self.json_response({"kind": t.rt.list_kind, "apiVersion": t.rt.api_version,
                                   "metadata": {"resourceVersion": str(self.store.cache.revision)},
                                   "items": deleted})

    async def _bind(self, t: Target, body, request: web.Request) -> web.Response:
        if not isinstance(body, dict):
            raise bad_request("Binding must be a JSON object")
        self.check_fields(t.rt, body, request, "io.k8s.api.core.v1.Binding")
        name = t.name if t.subresource == "binding" else (body.get("metadata") or {}).get("name", "")
        await subresources.bind(self.store, t.namespace or "default", name, body, self.dry_run(request))
        return self.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                   "status": "Success", "code": 201}, 201)

    def _review(self, t: Target, body, request: web.Request) -> web.Response:
        """The one identity we know (the admin token) may do everything, as system:masters may.
        Node identities and their authorization come with the node agent."""
        self.check_fields(t.rt, body, request)
        out = {"kind": t.rt.kind, "apiVersion": t.rt.api_version,
               "metadata": {"creationTimestamp": None}}
        if t.rt.kind == "SelfSubjectAccessReview":
            out["spec"] = body.get("spec") or {}
            out["status"] = {"allowed": True, "reason": "the admin token is in group system:masters"}
        else:
            out["status"] = {"userInfo": {"username": "kubernetes-admin",
                                          "groups": ["system:masters", "system:authenticated"]}}
        return self.json_response(out, 201)

    # ---- discovery and friends ----

    async def version(self, request: web.Request) -> web.Response:
        return self.json_response(discovery.VERSION_INFO)

    async def api(self, request: web.Request) -> web.Response:
        if discovery.wants_aggregated(request.headers.get("Accept", "")):
            return self._aggregated(discovery.aggregated(legacy=True))
        return self.json_response(discovery.api_versions(self.advertise))

    async def apis(self, request: web.Request) -> web.Response:
        if discovery.wants_aggregated(request.headers.get("Accept", "")):
            return self._aggregated(discovery.aggregated(legacy=False))
        return self.json_response(discovery.api_group_list())

    def _aggregated(self, doc: dict) -> web.Response:
        resp = web.Response(body=json.dumps(doc).encode())
        resp.headers["Content-Type"] = discovery.AGGREGATED_V2
        resp.headers["Vary"] = "Accept"
        return resp

    async def group_or_resources(self, request: web.Request) -> web.Response:
        parts = [p for p in request.path.split("/") if p]
        if parts[0] == "api" and len(parts) == 2:
            doc = discovery.api_resource_list("", parts[1])
        elif parts[0] == "apis" and len(parts) == 2:
            doc = discovery.api_group(parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            doc = discovery.api_resource_list(parts[1], parts[2])
        else:
            doc = None
        if doc is None:
            raise APIError(404, "NotFound", "the server could not find the requested resource", {})
        return self.json_response(doc)


__all__ = ["Handlers", "parse_path", "not_found"]
