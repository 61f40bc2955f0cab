"""/openapi/v2 and /openapi/v3: the API described for clients, from the upstream definitions.

kubectl uses these documents for three things:
- `kubectl explain pod.spec.containers` walks the v3 schema of the kind;
- `kubectl apply` looks for the `fieldValidation` query parameter on the PATCH operation of the
  kind (found through `x-kubernetes-group-version-kind`); when present it lets the *server*
  validate (fieldValidation=Strict) instead of validating on the client;
- `kubectl apply` also reads `x-kubernetes-patch-merge-key` to compute its strategic merge patch.

v3 is served per group-version (/openapi/v3/api/v1, /openapi/v3/apis/apps/v1) with an index at
/openapi/v3 that names each document with a content hash, so clients can cache them. v2 is one
document, served as JSON or, for client-go's discovery client, as gnostic protobuf (v2proto.py):
kubectl validates a `kind: List` on the client against the v2 models.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re

from controlplane.apiserver import schema
from controlplane.apiserver.openapi import v2proto
from controlplane.apiserver.resources import (
    BUILTIN_GROUPS, CREATE_ONLY_SUBRESOURCES, GROUPS, REGISTRY, SUBRESOURCE_KINDS, ResourceType)

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
TITLE = {"title": "Kubernetes", "version": "v1.37.0"}


def _param(name: str, where: str, typ: str, desc: str, required: bool = False) -> dict:
    p = {"name": name, "in": where, "description": desc, "schema": {"type": typ}, "uniqueItems": True}
    if required:
        p["required"] = True
    return p


_PRETTY = _param("pretty", "query", "string", "If 'true', then the output is pretty printed.")
_DRY = _param("dryRun", "query", "string", "When present, indicates that modifications should not "
              "be persisted. Valid values are: - All: all dry run stages will be processed")
_FM = _param("fieldManager", "query", "string", "fieldManager is a name associated with the actor "
             "or entity that is making these changes.")
_FV = _param("fieldValidation", "query", "string", "fieldValidation instructs the server on how to "
             "handle objects in the request containing unknown or duplicate fields. Valid values "
             "are: - Ignore - Warn - Strict")
_LIST = [
    _param("allowWatchBookmarks", "query", "boolean", "allowWatchBookmarks requests watch events "
           "with type \"BOOKMARK\"."),
    _param("continue", "query", "string", "The continue option should be set when retrieving more "
           "results from the server."),
    _param("fieldSelector", "query", "string", "A selector to restrict the list of returned objects "
           "by their fields. Defaults to everything."),
    _param("labelSelector", "query", "string", "A selector to restrict the list of returned objects "
           "by their labels. Defaults to everything."),
    _param("limit", "query", "integer", "limit is a maximum number of responses to return for a "
           "list call."),
    _param("resourceVersion", "query", "string", "resourceVersion sets a constraint on what resource "
           "versions a request may be served from."),
    _param("resourceVersionMatch", "query", "string", "resourceVersionMatch determines how "
           "resourceVersion is applied to list calls."),
    _param("sendInitialEvents", "query", "boolean", "`sendInitialEvents=true` may be set together "
           "with `watch=true`: the stream begins with synthetic events for every object."),
    _param("timeoutSeconds", "query", "integer", "Timeout for the list/watch call."),
    _param("watch", "query", "boolean", "Watch for changes to the described resources."),
]
_DELETE = [
    _DRY,
    _param("gracePeriodSeconds", "query", "integer", "The duration in seconds before the object "
           "should be deleted."),
    _param("propagationPolicy", "query", "string", "Whether and how garbage collection will be "
           "performed: Orphan, Background or Foreground."),
]
_PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json",
                "application/strategic-merge-patch+json", "application/apply-patch+yaml"]
# Custom resources take no strategic merge patch; `kubectl apply` reads this list (in v3) to
# choose between a strategic and a JSON merge patch.
_CUSTOM_PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json",
                       "application/apply-patch+yaml"]


def _ref(name: str, v3: bool) -> dict:
    return {"$ref": ("#/components/schemas/" if v3 else "#/definitions/") + name}


def _gvk(group: str, version: str, kind: str) -> dict:
    return {"group": group, "version": version, "kind": kind}


def _op(rt: ResourceType, action: str, op_id: str, desc: str, params: list, body: str | None,
        resp: str, v3: bool, kind: tuple[str, str, str] | None = None, patch: bool = False) -> dict:
    g, v, k = kind or (rt.group, rt.version, rt.kind)
    op: dict = {"description": desc, "operationId": op_id,
                "tags": [(rt.group.split(".")[0] + "_" if rt.group else "core_") + rt.version],
                "x-kubernetes-action": action, "x-kubernetes-group-version-kind": _gvk(g, v, k)}
    if v3:
        op["parameters"] = copy.deepcopy(params)
        if body:
            types = _patch_types(rt) if patch else ["application/json", "application/yaml"]
            op["requestBody"] = {"content": {t: {"schema": _ref(body, True)} for t in types},
                                 "required": True}
        op["responses"] = {"200": {"description": "OK", "content": {
            "application/json": {"schema": _ref(resp, True)},
            "application/yaml": {"schema": _ref(resp, True)}}},
            "401": {"description": "Unauthorized"}}
        if action in ("post", "put"):
            op["responses"]["201"] = {"description": "Created", "content": {
                "application/json": {"schema": _ref(resp, True)}}}
    else:
        ps = []
        for p in params:
            q = {k2: v2 for k2, v2 in p.items() if k2 != "schema"}
            q["type"] = p["schema"]["type"]
            ps.append(q)
        if body:
            ps.append({"name": "body", "in": "body", "required": True, "schema": _ref(body, False)})
        op["parameters"] = ps
        op["consumes"] = _patch_types(rt) if patch else ["*/*"]
        op["produces"] = ["application/json", "application/yaml"]
        op["schemes"] = ["https"]
        op["responses"] = {"200": {"description": "OK", "schema": _ref(resp, False)},
                           "401": {"description": "Unauthorized"}}
    return op


def _patch_types(rt: ResourceType) -> list[str]:
    return _CUSTOM_PATCH_TYPES if rt.custom is not None else _PATCH_TYPES


def _paths(rt: ResourceType, v3: bool) -> dict[str, dict]:
    kindname = rt.kind
    ver = (rt.group.split(".")[0].capitalize() if rt.group else "Core") + rt.version.capitalize()
    path_ns = _param("namespace", "path", "string", "object name and auth scope, such as for teams "
                     "and projects", True)
    path_name = _param("name", "path", "string", f"name of the {kindname}", True)
    base = rt.path(None)
    if rt.namespaced:
        base = base.replace(f"/{rt.plural}", f"/namespaces/{{namespace}}/{rt.plural}")
    scope = "Namespaced" if rt.namespaced else ""
    d, lst = rt.definition, rt.definition + "List"
    common = [_PRETTY] + ([path_ns] if rt.namespaced else [])
    paths: dict[str, dict] = {}
    if rt.verbs == ("create",):
        paths[base] = {"parameters": copy.deepcopy(common),
                       "post": _op(rt, "post", f"create{ver}{scope}{kindname}", f"create a {kindname}",
                                   [_DRY, _FM, _FV], d, d, v3)}
        return paths
    paths[base] = {
        "parameters": copy.deepcopy(common),
        "get": _op(rt, "list", f"list{ver}{scope}{kindname}", f"list or watch objects of kind {kindname}",
                   _LIST, None, lst, v3),
        "post": _op(rt, "post", f"create{ver}{scope}{kindname}", f"create a {kindname}",
                    [_DRY, _FM, _FV], d, d, v3),
        "delete": _op(rt, "deletecollection", f"deletecollection{ver}{scope}{kindname}",
                      f"delete collection of {kindname}", _DELETE + _LIST, None, META + "Status", v3),
    }
    item = base + "/{name}"
    paths[item] = {
        "parameters": copy.deepcopy(common + [path_name]),
        "get": _op(rt, "get", f"read{ver}{scope}{kindname}", f"read the specified {kindname}", [], None, d, v3),
        "put": _op(rt, "put", f"replace{ver}{scope}{kindname}", f"replace the specified {kindname}",
                   [_DRY, _FM, _FV], d, d, v3),
        "patch": _op(rt, "patch", f"patch{ver}{scope}{kindname}", f"partially update the specified "
                     f"{kindname}", [_DRY, _FM, _FV, _param("force", "query", "boolean", "Force is "
                     "going to \"force\" Apply requests.")], META + "Patch", d, v3, patch=True),
        "delete": _op(rt, "delete", f"delete{ver}{scope}{kindname}", f"delete a {kindname}", _DELETE,
                      None, d, v3),
    }
    for sub in rt.subresources:
        subpath = f"{item}/{sub}"
        cap = sub.capitalize()
        if sub in CREATE_ONLY_SUBRESOURCES:
            g, v, k = SUBRESOURCE_KINDS[sub]
            sd = f"io.k8s.api.{g.split('.')[0] or 'core'}.{v}.{k}"
            paths[subpath] = {"parameters": copy.deepcopy(common + [path_name]),
                              "post": _op(rt, "post", f"create{ver}{scope}{kindname}{cap}",
                                          f"create {sub} of a {kindname}", [_DRY, _FM, _FV],
                                          sd, sd, v3, (g, v, k))}
            continue
        g, v, k = SUBRESOURCE_KINDS.get(sub, (rt.group, rt.version, rt.kind))
        sd = "io.k8s.api.autoscaling.v1.Scale" if sub == "scale" else d
        paths[subpath] = {
            "parameters": copy.deepcopy(common + [path_name]),
            "get": _op(rt, "get", f"read{ver}{scope}{kindname}{cap}", f"read {sub} of the specified "
                       f"{kindname}", [], None, sd, v3, (g, v, k)),
            "put": _op(rt, "put", f"replace{ver}{scope}{kindname}{cap}", f"replace {sub} of the "
                       f"specified {kindname}", [_DRY, _FM, _FV], sd, sd, v3, (g, v, k)),
            "patch": _op(rt, "patch", f"patch{ver}{scope}{kindname}{cap}", f"partially update {sub} "
                         f"of the specified {kindname}", [_DRY, _FM, _FV], META + "Patch", sd, v3,
                         (g, v, k), patch=True),
        }
    if rt.namespaced:
        paths[rt.path(None)] = {"parameters": [_PRETTY],
                                "get": _op(rt, "list", f"list{ver}{kindname}ForAllNamespaces",
                                           f"list or watch objects of kind {kindname}", _LIST, None,
                                           lst, v3)}
    return paths


def _wrap_refs_v3(node):
    """Definitions use `#/definitions/X`; v3 wants `#/components/schemas/X`, and (like the
    kube-apiserver) a `$ref` with sibling keys wrapped in allOf, since OpenAPI 3.0 ignores
    siblings of `$ref`."""
    if isinstance(node, list):
        return [_wrap_refs_v3(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _wrap_refs_v3(v) for k, v in node.items()}
    ref = out.get("$ref")
    if isinstance(ref, str):  # not a property named "$ref" (JSONSchemaProps has one)
        out["$ref"] = ref.replace("#/definitions/", "#/components/schemas/")
        if len(out) > 1:
            target = out.pop("$ref")
            out["allOf"] = [{"$ref": target}]
    return out


def _reachable(names: list[str], defs: dict[str, dict]) -> dict[str, dict]:
    keep: dict[str, dict] = {}
    todo = list(names)
    while todo:
        n = todo.pop()
        if n in keep or n not in defs:
            continue
        keep[n] = defs[n]
        todo.extend(_refs_in(defs[n]))
    return keep


def _refs_in(node) -> list[str]:
    return re.findall(r'"\$ref": "#/(?:definitions|components/schemas)/([^"]+)"', json.dumps(node))


def _custom_definitions(v3: bool) -> dict[str, dict]:
    """The definitions of the served custom resources (apiextensions/openapi.py)."""
    from controlplane.apiserver.apiextensions import openapi as crd_openapi
    out: dict[str, dict] = {}
    for rt in REGISTRY.custom:
        for name, d in crd_openapi.definitions(rt.custom).items():
            out[name] = d if v3 else crd_openapi.to_v2(d)
    return out


# The documents change only when the set of resources does (CRDs): built once per generation.
def v2_document() -> bytes:
    return _v2_document(REGISTRY.generation)


def v2_protobuf() -> bytes:
    return _v2_protobuf(REGISTRY.generation)


@functools.lru_cache(maxsize=2)
def _v2_protobuf(generation: int) -> bytes:
    return v2proto.document(json.loads(_v2_document(generation)))


def v3_documents() -> dict[str, bytes]:
    return _v3_documents(REGISTRY.generation)


def v3_index() -> bytes:
    return _v3_index(REGISTRY.generation)


@functools.lru_cache(maxsize=2)
def _v2_document(generation: int) -> bytes:
    paths: dict[str, dict] = {}
    for group, versions in GROUPS.items():
        for version in versions:
            for rt in REGISTRY.in_group_version(group, version):
                paths.update(_paths(rt, v3=False))
    defs = schema.definitions()
    if REGISTRY.custom:
        defs = {**defs, **_custom_definitions(v3=False)}
    doc = {"swagger": "2.0", "info": TITLE, "paths": paths, "definitions": defs,
           "securityDefinitions": {"BearerToken": {"type": "apiKey", "name": "authorization",
                                                   "in": "header"}},
           "security": [{"BearerToken": []}]}
    return json.dumps(doc).encode()


@functools.lru_cache(maxsize=2)
def _v3_documents(generation: int) -> dict[str, bytes]:
    """Group-version path ("api/v1", "apis/apps/v1") → v3 document. A CRD change rebuilds only
    the custom groups' documents; the built-in ones are made once."""
    docs = {}
    defs = None
    for group, versions in GROUPS.items():
        for version in versions:
            key = f"apis/{group}/{version}" if group else f"api/{version}"
            if group in BUILTIN_GROUPS:
                docs[key] = _builtin_v3_document(group, version)
                continue
            if defs is None:
                defs = {**schema.definitions(), **_custom_definitions(v3=True)}
            docs[key] = _v3_document(group, version, defs)
    return docs


@functools.cache
def _builtin_v3_document(group: str, version: str) -> bytes:
    return _v3_document(group, version, schema.definitions())


def _v3_document(group: str, version: str, defs: dict[str, dict]) -> bytes:
    paths: dict[str, dict] = {}
    for rt in REGISTRY.in_group_version(group, version):
        paths.update(_paths(rt, v3=True))
    names = set(_refs_in(paths)) | {META + "Status", META + "Patch", META + "DeleteOptions"}
    comps = {n: _wrap_refs_v3(s) for n, s in sorted(_reachable(sorted(names), defs).items())}
    doc = {"openapi": "3.0.0", "info": TITLE, "paths": paths,
           "components": {"schemas": comps,
                          "securitySchemes": {"BearerToken": {"type": "apiKey",
                                                              "name": "authorization",
                                                              "in": "header"}}},
           "security": [{"BearerToken": []}]}
    return json.dumps(doc).encode()


@functools.lru_cache(maxsize=2)
def _v3_index(generation: int) -> bytes:
    paths = {}
    for key, body in _v3_documents(generation).items():
        h = hashlib.sha512(body).hexdigest()[:128].upper()
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={h}"}
    return json.dumps({"paths": paths}).encode()
