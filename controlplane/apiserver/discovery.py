"""Discovery: how a client learns which resources exist (`kubectl api-resources`).

Two forms, both served:
- legacy: /api → APIVersions, /apis → APIGroupList, then one APIResourceList per group-version
  (/api/v1, /apis/apps/v1): one request per group-version.
- aggregated (apidiscovery.k8s.io/v2, used by kubectl since 1.30): /api and /apis return every
  resource of every version in one APIGroupDiscoveryList when the client asks for it with
  `Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`. The response's
  Content-Type must echo that media type, or client-go treats the body as the legacy form.

/version reports 1.37 so kubectl (1.37) prints no version-skew warning.
"""

from __future__ import annotations

import json

from aiohttp import web

from controlplane.apiserver.errors import not_found_path
from controlplane.apiserver.requests import json_response
from controlplane.apiserver.resources import (
    CREATE_ONLY_SUBRESOURCES, GROUPS, REGISTRY, SUBRESOURCE_KINDS, ResourceType)

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

VERSION_INFO = {
    "major": "1", "minor": "37", "emulationMajor": "1", "emulationMinor": "37",
    "minCompatibilityMajor": "1", "minCompatibilityMinor": "36",
    "gitVersion": "v1.37.0-nodeagent", "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean", "buildDate": "2026-11-25T00:00:00Z",
    "goVersion": "python", "compiler": "cpython", "platform": "linux/amd64",
}


def wants_aggregated(accept: str) -> bool:
    for part in accept.split(","):
        params = {p.strip() for p in part.split(";")[1:]}
        if {"g=apidiscovery.k8s.io", "v=v2", "as=APIGroupDiscoveryList"} <= params:
            return True
    return False


def api_versions(server_address: str) -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group(name: str) -> dict:
    versions = [{"groupVersion": f"{name}/{v}", "version": v} for v in GROUPS[name]]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def api_group_list() -> dict:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group(g) for g in GROUPS if g]}


def api_group(name: str) -> dict | None:
    if name not in GROUPS or not name:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name)}


def _verbs(r: ResourceType) -> list[str]:
    return sorted(r.verbs)


def _sub_verbs(sub: str) -> list[str]:
    return ["create"] if sub in CREATE_ONLY_SUBRESOURCES else ["get", "patch", "update"]


def api_resource_list(group: str, version: str) -> dict | None:
    rts = REGISTRY.in_group_version(group, version)
    if not rts:
        return None
    out = []
    for r in rts:
        res = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
               "kind": r.kind, "verbs": _verbs(r)}
        if r.short_names:
            res["shortNames"] = list(r.short_names)
        if r.categories:
            res["categories"] = list(r.categories)
        out.append(res)
        for sub in r.subresources:
            g, v, k = SUBRESOURCE_KINDS.get(sub, (r.group, r.version, r.kind))
            entry = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                     "kind": k, "verbs": _sub_verbs(sub)}
            if sub in SUBRESOURCE_KINDS and g != group:
                entry["group"], entry["version"] = g, v
            out.append(entry)
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": out}


def _aggregated_resource(r: ResourceType) -> dict:
    res = {"resource": r.plural,
           "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
           "scope": "Namespaced" if r.namespaced else "Cluster",
           "singularResource": r.singular, "verbs": _verbs(r)}
    if r.short_names:
        res["shortNames"] = list(r.short_names)
    if r.categories:
        res["categories"] = list(r.categories)
    subs = []
    for sub in r.subresources:
        g, v, k = SUBRESOURCE_KINDS.get(sub, (r.group, r.version, r.kind))
        subs.append({"subresource": sub, "responseKind": {"group": g, "version": v, "kind": k},
                     "verbs": _sub_verbs(sub)})
    if subs:
        res["subresources"] = subs
    return res


def aggregated(legacy: bool) -> dict:
    """APIGroupDiscoveryList for /api (legacy=True: the core group) or /apis (the rest)."""
    items = []
    for g, versions in GROUPS.items():
        if (g == "") != legacy:
            continue
        vs = [{"version": v,
               "resources": [_aggregated_resource(r) for r in REGISTRY.in_group_version(g, v)],
               "freshness": "Current"} for v in versions]
        item = {"metadata": {"creationTimestamp": None}, "versions": vs}
        if g:
            item["metadata"]["name"] = g
        items.append(item)
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {}, "items": items}


# ---- the endpoints ----

async def version(request: web.Request) -> web.Response:
    return json_response(VERSION_INFO)


async def api(request: web.Request, advertise: str) -> web.Response:
    if wants_aggregated(request.headers.get("Accept", "")):
        return _aggregated(aggregated(legacy=True))
    return json_response(api_versions(advertise))


async def apis(request: web.Request) -> web.Response:
    if wants_aggregated(request.headers.get("Accept", "")):
        return _aggregated(aggregated(legacy=False))
    return json_response(api_group_list())


def _aggregated(doc: dict) -> web.Response:
    resp = web.Response(body=json.dumps(doc).encode())
    resp.headers["Content-Type"] = AGGREGATED_V2
    resp.headers["Vary"] = "Accept"
    return resp


async def group_or_resources(request: web.Request) -> web.Response:
    parts = [p for p in request.path.split("/") if p]
    if parts[0] == "api" and len(parts) == 2:
        doc = api_resource_list("", parts[1])
    elif parts[0] == "apis" and len(parts) == 2:
        doc = api_group(parts[1])
    elif parts[0] == "apis" and len(parts) == 3:
        doc = api_resource_list(parts[1], parts[2])
    else:
        doc = None
    if doc is None:
        raise not_found_path()
    return json_response(doc)
