"""A bounded schemathesis run against the OpenAPI document we serve: no request may cause a 5xx.

The generated requests (random names, selectors, bodies of every kind, patches, deletes) hit a
real server; 4xx answers are fine — they are the server refusing bad input — but a 5xx means a
crash path. Watch streams are left out (a fuzzed `watch=true` would just stream until its timeout;
watches have their own tests).
"""

import json

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, settings  # noqa: E402

from controlplane.apiserver import openapi  # noqa: E402
from controlplane.apiserver.apiextensions import crd as crds, registry  # noqa: E402
from controlplane.apiserver.resources import REGISTRY  # noqa: E402

# No example database: the checkout may be read-only (the unit tier runs as an unprivileged user).
settings.register_profile("apiserver-fuzz", database=None)
settings.load_profile("apiserver-fuzz")


# A custom resource to fuzz as well: served by the test server (created by the fixture below) and
# added to this process's resource table so that the document we fuzz from describes it.
FUZZ_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "fuzzthings.fuzz.example.com"},
    "spec": {"group": "fuzz.example.com", "scope": "Namespaced",
             "names": {"plural": "fuzzthings", "singular": "fuzzthing", "kind": "FuzzThing"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "subresources": {"status": {}, "scale": {
                               "specReplicasPath": ".spec.replicas",
                               "statusReplicasPath": ".status.replicas"}},
                           "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                               "spec": {"type": "object", "required": ["size"], "properties": {
                                   "size": {"type": "integer", "minimum": 1, "default": 1},
                                   "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 8},
                                   "tags": {"type": "array", "maxItems": 3, "items": {"type": "string"}},
                                   "replicas": {"type": "integer"},
                                   "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}},
                               "status": {"type": "object", "properties": {
                                   "replicas": {"type": "integer"}}}}}}}]}}


def _register_fuzz_crd() -> None:
    crd = json.loads(json.dumps(FUZZ_CRD))
    crds.default(crd)
    crds.compute_status(crd, [])
    rts = registry.resource_types(crd)
    REGISTRY.set_custom(rts, {"fuzz.example.com": ["v1"]})


@pytest.fixture(scope="module", autouse=True)
def fuzz_crd(server):
    import ssl
    import urllib.request
    req = urllib.request.Request(server.url + "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                                 data=json.dumps(FUZZ_CRD).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {server.token}",
                                          "Content-Type": "application/json"})
    ctx = ssl.create_default_context(cafile=str(server.data_dir / "pki" / "ca.crt"))
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        assert r.status == 201


def _fuzz_document() -> dict:
    _register_fuzz_crd()
    try:
        doc = json.loads(openapi.v2_document())
    finally:  # other modules of this pytest process see the built-in table only
        REGISTRY.set_custom([], {})
    for item in doc["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and "parameters" in op:
                op["parameters"] = [p for p in op["parameters"]
                                    if p.get("name") not in ("watch", "timeoutSeconds", "allowWatchBookmarks",
                                                             "sendInitialEvents")]
    return doc


# The coverage phase precomputes boundary cases for every operation at collection time, which for
# the kube API's large schemas takes minutes; the generate phase alone is the bounded run we want.
_CONFIG = schemathesis.config.SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}})
schema = schemathesis.openapi.from_dict(_fuzz_document(), config=_CONFIG)


# `as_`: the identity the requests are made as (the admin token). It is a parametrization for a
# second reason: it gives every operation's test its own node id. Without one, pytest 9 names all
# of schemathesis 4's items `test_no_server_errors` alike, and pytest-xdist (the unit tier runs on
# it) keys its work by node id: all 467 collapsed into one test and the rest never ran.
@schema.parametrize()
@pytest.mark.parametrize("as_", ["admin"])
@settings(max_examples=3, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck), derandomize=True, database=None)
def test_no_server_errors(case, server, as_):
    token = {"admin": server.token}[as_]
    response = case.call(base_url=server.url, headers={"Authorization": f"Bearer {token}"},
                         verify=str(server.data_dir / "pki" / "ca.crt"), timeout=10)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:500]}"
