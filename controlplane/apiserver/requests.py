"""Reading a request: which object it is about, what it carries, what it wants back.

- the path → a Target (resource type, namespace, name, subresource);
- the body → a dict, from JSON, YAML or Kubernetes protobuf (by Content-Type);
- `fieldValidation`: the body checked against the upstream schema — wrong types are always a 400
  with the field path; unknown fields are a 400 (Strict, what kubectl sends), a `Warning: 299`
  header (Warn, the default) or ignored (Ignore);
- `dryRun=All`, Accept (JSON, or a Table for `kubectl get`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import yaml
from aiohttp import web

from controlplane.apiserver import schema
from controlplane.apiserver.errors import bad_request, not_acceptable, unsupported_media_type
from controlplane.apiserver.resources import REGISTRY, ResourceType

JSON = "application/json"


@dataclass(frozen=True)
class Target:
    rt: ResourceType
    namespace: str | None
    name: str
    subresource: str


def parse_path(path: str) -> Target | None:
    """/api/v1/namespaces/ns/pods/web/status → Target(pods, "ns", "web", "status"); None if the
    path names nothing we serve. /api/v1/namespaces/<x>/<y> is a namespaced collection when <y>
    is a namespaced resource, else <x>'s own subresource (namespaces/<x>/status)."""
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


def as_bool(v: str | None) -> bool:
    return v is not None and v.lower() in ("true", "1")


def as_int(q, name: str) -> int | None:
    v = q.get(name)
    if v in (None, ""):
        return None
    try:
        return int(v)
    except ValueError:
        raise bad_request(f'invalid value for {name}: "{v}": must be an integer') from None


def wants_table(accept: str) -> bool:
    return any("as=Table" in part and "g=meta.k8s.io" in part for part in accept.split(","))


def check_accept(accept: str) -> None:
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


def json_response(obj, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    resp = web.Response(body=json.dumps(obj, separators=(",", ":")).encode(), status=status,
                        content_type=JSON)
    for w in warnings or []:
        # RFC 7234 warn-text is a quoted-string: escape quotes and backslashes inside it.
        text = w.replace("\\", "\\\\").replace('"', '\\"')
        resp.headers.add("Warning", f'299 - "{text}"')
    return resp

async def read_body(request: web.Request) -> object:
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

def check_fields(rt: ResourceType, obj: object, request: web.Request,
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
    if rt.custom is not None and definition == rt.definition:
        res = _check_custom(rt, obj)
    else:
        res = schema.check(definition, obj)
    prefix = f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
    if res.type_errors:
        path, what = res.type_errors[0]
        if what.startswith("illegal base64"):  # Go's encoding/base64 error, said as it says it
            raise bad_request(prefix + what)
        raise bad_request(prefix + f"json: cannot decode field \"{path}\": {what}")
    if not res.unknown:
        return []
    if mode != "Strict":
        res.prune()  # what Go's decoder does: unknown fields never reach storage
    if mode == "Ignore":
        return []
    if mode == "Strict":
        text = ", ".join(f'unknown field "{u}"' for u in res.unknown)
        raise bad_request(prefix + "strict decoding error: " + text)
    return [f'unknown field "{u}"' for u in res.unknown]

def _check_custom(rt: ResourceType, obj: dict) -> schema.CheckResult:
    """A custom resource: metadata is an ObjectMeta (checked as for every kind); the rest has
    no type errors at decoding (the CRD schema's 422s come later, from validation) and its
    unknown fields are what pruning drops."""
    res = schema.CheckResult()
    md = obj.get("metadata")
    if md is not None:
        sub = schema.check("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", md)
        res.type_errors = [(f"metadata.{p}" if p else "metadata", w) for p, w in sub.type_errors]
        res.unknown = [f"metadata.{u}" for u in sub.unknown]
        res._drop = sub._drop
    res.unknown += rt.custom.unknown_fields(obj)
    return res


def dry_run(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    for v in values:
        if v != "All":
            raise bad_request(f'dryRun: Unsupported value: "{v}": supported values: "All"')
    return bool(values)
