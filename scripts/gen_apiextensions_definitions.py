#!/usr/bin/env python3
"""Regenerate controlplane/apiserver/apiextensions/definitions.json.gz: the upstream OpenAPI
definitions of apiextensions.k8s.io/v1 (CustomResourceDefinition and the JSONSchemaProps it
embeds), from the same source and with the same conversion as gen_openapi_definitions.py. Kept
apart from the built-in kinds' file so the two can be regenerated independently.

    .venv/bin/pip install kubernetes-validate
    .venv/bin/python scripts/gen_apiextensions_definitions.py
"""

import gzip
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from gen_openapi_definitions import convert  # noqa: E402

PREFIX = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."


def main():
    import importlib.util  # the package's data only: importing it needs jsonschema
    spec = importlib.util.find_spec("kubernetes_validate")
    src = Path(list(spec.submodule_search_locations)[0]) / \
        "kubernetes-json-schema/v1.37.0-local/_definitions.json"
    defs = json.loads(src.read_text())["$defs"]
    keep = {name: convert(d) for name, d in defs.items() if name.startswith(PREFIX)}
    out = ROOT / "controlplane/apiserver/apiextensions/definitions.json.gz"
    data = json.dumps(dict(sorted(keep.items())), sort_keys=True, separators=(",", ":")).encode()
    out.write_bytes(gzip.compress(data, 9, mtime=0))
    print(f"{out.relative_to(ROOT)}: {len(keep)} definitions, {len(data)} bytes")


if __name__ == "__main__":
    main()
