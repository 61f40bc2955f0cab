"""CustomResourceDefinitions against the real kubectl and the official Python client: upstream's
CronTab example (schema validation, defaults, pruning, printer columns, short names, two
versions with the `None` conversion, discovery, OpenAPI, `kubectl explain`) and invalid CRDs.
Each test asserts what a real cluster answers (messages from apiextensions-apiserver and
kube-openapi). Operators' and Helm charts' CRDs: test_crd_lifecycle.py.
"""

import json
import urllib.request

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.unit.controlplane.crds import (
    CRONTAB, CRONTAB_OBJ, OPERATOR, api_client, create_crd, raw)


@pytest.fixture(scope="module")
def crontab(kubectl):
    kubectl("apply", "-f", "-", input=CRONTAB)
    kubectl("wait", "--for", "condition=Established", "crd/crontabs.stable.example.com", "--timeout=10s")
    kubectl("apply", "-f", "-", input=CRONTAB_OBJ)  # the object most tests below work on
    return kubectl


# ---- the CronTab example: kubectl ----

def test_crd_is_established_and_served_at_once(server, kubectl):
    out = kubectl("apply", "-f", "-", input=CRONTAB.replace("crontabs", "quicktabs")
                  .replace("CronTab", "QuickTab").replace("crontab", "quicktab").replace("[ct]", "[qt]"))
    assert "customresourcedefinition.apiextensions.k8s.io/quicktabs.stable.example.com created" in out
    # No waiting: the endpoints exist when the create has returned.
    code, body = raw(server, "GET", "/apis/stable.example.com/v1/namespaces/default/quicktabs")
    assert code == 200 and body["kind"] == "QuickTabList" and body["items"] == []
    crd = json.loads(kubectl("get", "crd", "quicktabs.stable.example.com", "-o", "json"))
    conds = {c["type"]: (c["status"], c["reason"]) for c in crd["status"]["conditions"]}
    assert conds["NamesAccepted"] == ("True", "NoConflicts")
    assert conds["Established"] == ("True", "InitialNamesAccepted")
    assert crd["status"]["acceptedNames"]["shortNames"] == ["qt"]
    assert crd["status"]["storedVersions"] == ["v1"]
    assert crd["spec"]["conversion"] == {"strategy": "None"}
    kubectl("delete", "crd", "quicktabs.stable.example.com")


def test_create_get_with_defaults_columns_and_short_name(crontab):
    assert "crontab.stable.example.com/second-cron created" in \
        crontab("apply", "-f", "-", input=CRONTAB_OBJ.replace("my-new-cron-object", "second-cron"))
    obj = json.loads(crontab("get", "ct", "second-cron", "-o", "json"))
    assert obj["spec"]["replicas"] == 1  # the schema's default
    assert obj["metadata"]["generation"] == 1
    table = crontab("get", "crontabs").splitlines()
    assert table[0].split() == ["NAME", "SPEC", "REPLICAS", "AGE"]
    row = next(r for r in table if r.startswith("second-cron "))
    assert row.split()[:7] == ["second-cron", "*", "*", "*", "*", "*/5", "1"]
    # categories: `kubectl get all` includes it
    assert "crontab.stable.example.com/second-cron" in crontab("get", "all")


def test_unknown_fields_strict_and_pruned(crontab, server):
    bad = CRONTAB_OBJ.replace("my-new-cron-object", "strict-one") + "  extra: 1\n"
    p = crontab.run("apply", "-f", "-", input=bad, check=False)
    assert p.returncode == 1
    assert 'CronTab in version "v1" cannot be handled as a CronTab: strict decoding error: ' \
           'unknown field "spec.extra"' in p.stderr
    # fieldValidation=Ignore (the API default is Warn): stored without the field
    body = yaml.safe_load(bad)
    code, out = raw(server, "POST", "/apis/stable.example.com/v1/namespaces/default/crontabs"
                    "?fieldValidation=Ignore", body)
    assert code == 201 and "extra" not in out["spec"] and out["spec"]["replicas"] == 1
    code, out = raw(server, "POST", "/apis/stable.example.com/v1/namespaces/default/crontabs",
                    {**body, "metadata": {"name": "warned"}, "top": {"x": 1}})
    assert code == 201 and "top" not in out and "extra" not in out["spec"]


@pytest.mark.parametrize("patch,message", [
    ({"spec": {"replicas": 20}},
     "spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10"),
    ({"spec": {"replicas": 0}},
     "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"),
    ({"spec": {"cronSpec": "bad"}},
     "spec.cronSpec: Invalid value: \"bad\": spec.cronSpec in body should match "
     "'^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'"),
    ({"spec": {"replicas": "two"}},
     'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"'),
    ({"spec": {"color": "pink"}},
     'spec.color: Unsupported value: "pink": supported values: "red", "blue"'),
    ({"spec": {"tags": ["a", "b", "c"]}}, "spec.tags: Too many: 3: must have at most 2 items"),
    ({"spec": {"cronSpec": None}}, "spec.cronSpec: Required value"),
])
def test_schema_validation_messages(crontab, patch, message):
    p = crontab.run("patch", "ct", "my-new-cron-object", "--type=merge", "-p", json.dumps(patch),
                    check=False)
    assert p.returncode == 1
    assert f'The CronTab "my-new-cron-object" is invalid: {message}' in p.stderr, p.stderr


def test_nullable_and_null_pruning(crontab, server):
    path = "/apis/stable.example.com/v1/namespaces/default/crontabs/my-new-cron-object"
    code, out = raw(server, "PATCH", path, {"spec": {"note": None, "image": None}},
                    "application/merge-patch+json")
    assert code == 200 and "image" not in out["spec"]  # merge patch: null removes
    code, out = raw(server, "PATCH", path, [{"op": "add", "path": "/spec/note", "value": None},
                                            {"op": "add", "path": "/spec/image", "value": None}],
                    "application/json-patch+json")
    # note is nullable and keeps its null; image is not and has no default: the null is pruned
    assert code == 200 and out["spec"]["note"] is None and "image" not in out["spec"]


def test_patch_kinds(crontab, server):
    path = "/apis/stable.example.com/v1/namespaces/default/crontabs/my-new-cron-object"
    code, body = raw(server, "PATCH", path, {"spec": {"replicas": 3}},
                     "application/strategic-merge-patch+json")
    assert code == 415 and body["reason"] == "UnsupportedMediaType"
    assert "application/json-patch+json, application/merge-patch+json" in body["message"]
    crontab("patch", "ct", "my-new-cron-object", "--type=json",
            "-p", '[{"op":"replace","path":"/spec/replicas","value":4}]')
    obj = json.loads(crontab("get", "ct", "my-new-cron-object", "-o", "json"))
    assert obj["spec"]["replicas"] == 4 and obj["metadata"]["generation"] >= 2


def test_versions_none_conversion(crontab, server):
    old = json.loads(crontab("get", "crontabs.v1beta1.stable.example.com", "my-new-cron-object",
                             "-o", "json"))
    assert old["apiVersion"] == "stable.example.com/v1beta1" and old["kind"] == "CronTab"
    code, made = raw(server, "POST", "/apis/stable.example.com/v1beta1/namespaces/default/crontabs",
                     {"apiVersion": "stable.example.com/v1beta1", "kind": "CronTab",
                      "metadata": {"name": "from-beta"}, "spec": {"cronSpec": "1 2 3 4 5", "free": "x"}})
    assert code == 201 and made["apiVersion"] == "stable.example.com/v1beta1"
    assert made["spec"]["free"] == "x"  # v1beta1 keeps unknown fields in spec
    # Stored in the storage version; read through v1 it is rewritten, pruned and defaulted.
    code, v1 = raw(server, "GET", "/apis/stable.example.com/v1/namespaces/default/crontabs/from-beta")
    assert code == 200 and v1["apiVersion"] == "stable.example.com/v1"
    assert v1["spec"] == {"cronSpec": "1 2 3 4 5", "replicas": 1}
    code, lst = raw(server, "GET", "/apis/stable.example.com/v1beta1/crontabs")
    assert {i["apiVersion"] for i in lst["items"]} == {"stable.example.com/v1beta1"}
    # discovery prefers v1 (GA before beta)
    code, group = raw(server, "GET", "/apis/stable.example.com")
    assert group["preferredVersion"]["version"] == "v1"
    assert [v["version"] for v in group["versions"]] == ["v1", "v1beta1"]


def test_explain(crontab):
    out = crontab("explain", "crontab.spec")
    assert "KIND:       CronTab" in out and "VERSION:    v1" in out
    assert "cronSpec\t<string>" in out and "when it runs, in cron syntax" in out
    out = crontab("explain", "ct.spec.replicas")
    assert "FIELD: replicas <integer>" in out


def test_openapi_v2_and_v3(crontab, server):
    code, v2 = raw(server, "GET", "/openapi/v2")
    d = v2["definitions"]["com.example.stable.v1.CronTab"]
    assert d["x-kubernetes-group-version-kind"] == [{"group": "stable.example.com", "kind": "CronTab",
                                                     "version": "v1"}]
    assert "/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}" in v2["paths"]
    assert "nullable" not in json.dumps(d)
    code, index = raw(server, "GET", "/openapi/v3")
    assert "apis/stable.example.com/v1beta1" in index["paths"]
    code, v3 = raw(server, "GET", "/openapi/v3/apis/stable.example.com/v1")
    assert v3["components"]["schemas"]["com.example.stable.v1.CronTab"]["properties"]["spec"][
        "properties"]["note"]["nullable"] is True


def test_discovery(crontab, server):
    out = crontab("api-resources", "--api-group=stable.example.com")
    line = [ln for ln in out.splitlines() if ln.startswith("crontabs")][0]
    assert line.split() == ["crontabs", "ct", "stable.example.com/v1", "true", "CronTab"]
    req = urllib.request.Request(server.url + "/apis", headers={
        "Authorization": f"Bearer {server.token}",
        "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"})
    with urllib.request.urlopen(req, context=server.ssl_context()) as r:
        doc = json.loads(r.read())
    group = next(i for i in doc["items"] if i["metadata"].get("name") == "stable.example.com")
    res = next(r for r in group["versions"][0]["resources"] if r["resource"] == "crontabs")
    assert res["shortNames"] == ["ct"] and res["categories"] == ["all"]
    assert res["scope"] == "Namespaced" and res["responseKind"]["kind"] == "CronTab"


def test_watch_and_deletecollection(crontab, server):
    api = client.CustomObjectsApi(api_client(server))
    for i in range(3):
        api.create_namespaced_custom_object("stable.example.com", "v1", "default", "crontabs", {
            "apiVersion": "stable.example.com/v1", "kind": "CronTab",
            "metadata": {"name": f"batch-{i}", "labels": {"batch": "yes"}},
            "spec": {"cronSpec": "* * * * *"}})
    w = watch.Watch()
    seen = []
    for ev in w.stream(api.list_namespaced_custom_object, "stable.example.com", "v1", "default",
                       "crontabs", label_selector="batch=yes", timeout_seconds=5):
        seen.append((ev["type"], ev["object"]["metadata"]["name"], ev["object"]["spec"]["replicas"]))
        if len(seen) == 3:
            w.stop()
    assert sorted(seen) == [("ADDED", f"batch-{i}", 1) for i in range(3)]
    api.delete_collection_namespaced_custom_object("stable.example.com", "v1", "default", "crontabs",
                                                   label_selector="batch=yes")
    left = api.list_namespaced_custom_object("stable.example.com", "v1", "default", "crontabs",
                                             label_selector="batch=yes")
    assert left["items"] == []


# ---- an operator's CRD: status and scale subresources ----

@pytest.mark.parametrize("change,message", [
    (lambda c: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].pop("type"),
     "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be "
     "empty for specified object fields"),
    (lambda c: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"].update(
        {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}),
     "spec.versions[0].schema.openAPIV3Schema.properties[metadata]: Forbidden: must not specify "
     "anything other than name and generateName, but metadata is implicitly specified"),
    (lambda c: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].update(
        {"anyOf": [{"type": "object", "properties": {"x": {"type": "string"}}}]}),
     "spec.versions[0].schema.openAPIV3Schema.properties[spec].anyOf[0].type: Forbidden: must be "
     "empty to be structural"),
    (lambda c: c["spec"]["versions"][0].pop("schema"),
     "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"),
    (lambda c: c["spec"]["versions"][0].update({"storage": False}),
     "must have exactly one version marked as storage version"),
    (lambda c: c["metadata"].update({"name": "wrong.ops.example.org"}),
     'metadata.name: Invalid value: "wrong.ops.example.org": must be spec.names.plural+"."+spec.group'),
    (lambda c: c["spec"].update({"group": "nodots"}),
     'spec.group: Invalid value: "nodots": should be a domain with at least one dot'),
    (lambda c: c["spec"].update({"scope": "Galaxy"}),
     'spec.scope: Unsupported value: "Galaxy": supported values: "Cluster", "Namespaced"'),
    (lambda c: c["spec"]["versions"][0]["subresources"]["scale"].update({"specReplicasPath": ".status.x"}),
     'spec.versions[0].subresources.scale.specReplicasPath: Invalid value: ".status.x": should be a '
     'json path under .spec'),
    (lambda c: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "replicas"].update({"default": "three"}),
     "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[replicas].default: "
     'Invalid value: "string": spec.replicas in body must be of type integer: "string"'),
])
def test_invalid_crds(server, change, message):
    crd = json.loads(json.dumps(OPERATOR))
    crd["metadata"]["name"] = "badthings.ops.example.org"
    crd["spec"]["names"] = {"plural": "badthings", "kind": "BadThing"}
    change(crd)
    code, body = raw(server, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert code == 422, body
    assert message in body["message"], body["message"]
    assert body["details"]["kind"] == "CustomResourceDefinition"


def test_names_conflict(server):
    crd = json.loads(json.dumps(OPERATOR))
    crd["metadata"]["name"] = "dbs.ops.example.org"
    crd["spec"]["names"] = {"plural": "dbs", "singular": "dbone", "kind": "Database"}  # kind taken
    code, _ = raw(server, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", OPERATOR)
    code, body = raw(server, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert code == 201
    conds = {c["type"]: c for c in body["status"]["conditions"]}
    assert conds["NamesAccepted"]["status"] == "False"
    assert conds["NamesAccepted"]["reason"] == "KindConflict"
    assert conds["NamesAccepted"]["message"] == '"Database" is already in use'
    assert conds["Established"]["status"] == "False"
    code, _ = raw(server, "GET", "/apis/ops.example.org/v1alpha1/namespaces/default/dbs")
    assert code == 404


# ---- deletion ----

def test_reapply_unchanged_and_field_selector(crontab):
    crontab("apply", "-f", "-", input=CRONTAB_OBJ)
    assert "crontab.stable.example.com/my-new-cron-object unchanged" in \
        crontab("apply", "-f", "-", input=CRONTAB_OBJ)
    out = crontab("get", "ct", "--field-selector", "metadata.name=my-new-cron-object", "-o", "name")
    assert out.split() == ["crontab.stable.example.com/my-new-cron-object"]
    p = crontab.run("get", "ct", "--field-selector", "spec.image=x", check=False)
    assert p.returncode == 1 and "spec.image" in p.stderr


def test_explain_crd_itself(kubectl):
    out = kubectl("explain", "crd.spec.versions.schema")
    assert "KIND:       CustomResourceDefinition" in out and "openAPIV3Schema\t<JSONSchemaProps>" in out


def test_reapply_crd_and_change_names(crontab, server):
    assert "customresourcedefinition.apiextensions.k8s.io/crontabs.stable.example.com unchanged" in \
        crontab("apply", "-f", "-", input=CRONTAB)
    changed = CRONTAB.replace("shortNames: [ct]", "shortNames: [ct, cts]")
    assert "configured" in crontab("apply", "-f", "-", input=changed)
    crd = json.loads(crontab("get", "crd", "crontabs.stable.example.com", "-o", "json"))
    assert crd["status"]["acceptedNames"]["shortNames"] == ["ct", "cts"]
    assert crd["metadata"]["generation"] == 2
    assert "my-new-cron-object" in crontab("get", "cts", "-o", "name")
    crontab("apply", "-f", "-", input=CRONTAB)


def test_replace_with_resource_version(crontab, server):
    api = client.CustomObjectsApi(api_client(server))
    g, v = "stable.example.com", "v1"
    obj = api.get_namespaced_custom_object(g, v, "default", "crontabs", "my-new-cron-object")
    stale = json.loads(json.dumps(obj))
    obj["spec"]["image"] = "replaced:2"
    obj["spec"].pop("replicas")
    out = api.replace_namespaced_custom_object(g, v, "default", "crontabs", "my-new-cron-object", obj)
    assert out["spec"]["image"] == "replaced:2" and out["spec"]["replicas"] == 1  # defaulted again
    assert out["metadata"]["generation"] == obj["metadata"]["generation"] + 1
    stale["spec"]["image"] = "stale"
    with pytest.raises(ApiException) as e:
        api.replace_namespaced_custom_object(g, v, "default", "crontabs", "my-new-cron-object", stale)
    assert e.value.status == 409 and json.loads(e.value.body)["reason"] == "Conflict"
