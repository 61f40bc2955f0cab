"""OpenAPI definitions of custom resources, so `kubectl explain crontab.spec` works.

Upstream's builder (apiextensions-apiserver/pkg/controller/openapi/builder) publishes each
served version of a CRD as a definition named by the reversed group, the version and the kind
(`com.example.stable.v1.CronTab`), and `<...>List` for its list: the CRD's schema with
apiVersion, kind and metadata (a `$ref` to ObjectMeta) filled in, tagged with
`x-kubernetes-group-version-kind` so clients find it by kind. OpenAPI v2 cannot say nullable,
anyOf, oneOf or not; those are dropped from the v2 copy (v3 keeps them).
"""

from __future__ import annotations

import copy
from typing import Any

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_API_VERSION = ("APIVersion defines the versioned schema of this representation of an object. "
                "Servers should convert recognized schemas to the latest internal value, and may "
                "reject unrecognized values. More info: https://git.k8s.io/community/contributors/"
                "devel/sig-architecture/api-conventions.md#resources")
_KIND = ("Kind is a string value representing the REST resource this object represents. Servers "
         "may infer this from the endpoint the client submits requests to. Cannot be updated. In "
         "CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/"
         "api-conventions.md#types-kinds")
_METADATA = ("Standard object's metadata. More info: https://git.k8s.io/community/contributors/"
             "devel/sig-architecture/api-conventions.md#metadata")


def definition_name(group: str, version: str, kind: str) -> str:
    return ".".join(reversed(group.split("."))) + f".{version}.{kind}"


def definitions(cr) -> dict[str, dict]:
    """{name: schema, name + "List": list schema} for one CustomResource (custom.py)."""
    name = definition_name(cr.group, cr.version, cr.kind)
    s = copy.deepcopy(cr.schema) if cr.schema else {"type": "object"}
    props = s.setdefault("properties", {})
    props["apiVersion"] = {"description": _API_VERSION, "type": "string"}
    props["kind"] = {"description": _KIND, "type": "string"}
    props["metadata"] = {"$ref": f"#/definitions/{META}ObjectMeta", "description": _METADATA}
    s.setdefault("type", "object")
    s["x-kubernetes-group-version-kind"] = [{"group": cr.group, "kind": cr.kind, "version": cr.version}]
    lst = {"description": f"{cr.list_kind} is a list of {cr.kind}",
           "properties": {
               "apiVersion": {"description": _API_VERSION, "type": "string"},
               "items": {"description": f"List of {cr.plural}. More info: https://git.k8s.io/"
                                        "community/contributors/devel/api-conventions.md",
                         "items": {"$ref": f"#/definitions/{name}"}, "type": "array"},
               "kind": {"description": _KIND, "type": "string"},
               "metadata": {"$ref": f"#/definitions/{META}ListMeta",
                            "description": "Standard list metadata. More info: https://git.k8s.io/"
                                           "community/contributors/devel/sig-architecture/"
                                           "api-conventions.md#types-kinds"}},
           "required": ["items"], "type": "object",
           "x-kubernetes-group-version-kind": [{"group": cr.group, "kind": cr.list_kind,
                                                "version": cr.version}]}
    return {name: s, name + "List": lst}


def to_v2(node: Any) -> Any:
    """A v3 schema made expressible in Swagger 2.0 (upstream's v2 conversion, in short)."""
    if isinstance(node, list):
        return [to_v2(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k in ("nullable", "anyOf", "oneOf", "not"):
            continue
        if k == "properties" and isinstance(v, dict):
            out[k] = {name: to_v2(p) for name, p in v.items()}
        else:
            out[k] = to_v2(v)
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
    return out
