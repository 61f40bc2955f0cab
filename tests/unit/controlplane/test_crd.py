"""CustomResourceDefinitions against the real kubectl and the official Python client.

Three CRDs users meet: upstream's CronTab example (schema validation, defaults, pruning,
printer columns, short names, two versions with `None` conversion), an operator's CRD with the
status and scale subresources, and a Helm chart's CRD that keeps unknown fields. Each test
asserts what a real cluster answers (messages from apiextensions-apiserver and kube-openapi).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest
import yaml
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from controlplane.apiserver.apiextensions import list_types

CRONTAB = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              description: the schedule and what runs
              required: [cronSpec]
              properties:
                cronSpec:
                  type: string
                  description: when it runs, in cron syntax
                  pattern: '^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'
                image:
                  type: string
                replicas:
                  type: integer
                  minimum: 1
                  maximum: 10
                  default: 1
                color:
                  type: string
                  enum: [red, blue]
                tags:
                  type: array
                  maxItems: 2
                  items: {type: string}
                  x-kubernetes-list-type: set
                note:
                  type: string
                  nullable: true
      additionalPrinterColumns:
      - name: Spec
        type: string
        description: The cron spec defining the interval a CronJob is run
        jsonPath: .spec.cronSpec
      - name: Replicas
        type: integer
        jsonPath: .spec.replicas
      - name: Age
        type: date
        jsonPath: .metadata.creationTimestamp
    - name: v1beta1
      served: true
      storage: false
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              x-kubernetes-preserve-unknown-fields: true
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames: [ct]
    categories: [all]
"""

CRONTAB_OBJ = """
apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: my-new-cron-object
spec:
  cronSpec: "* * * * */5"
  image: my-awesome-cron-image
"""

OPERATOR = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "databases.ops.example.org"},
    "spec": {
        "group": "ops.example.org", "scope": "Namespaced",
        "names": {"plural": "databases", "singular": "database", "kind": "Database", "shortNames": ["db"]},
        "versions": [{
            "name": "v1alpha1", "served": True, "storage": True,
            "subresources": {"status": {}, "scale": {
                "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.selector"}},
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "properties": {
                    "replicas": {"type": "integer", "minimum": 0},
                    "engine": {"type": "string"},
                    "port": {"x-kubernetes-int-or-string": True},
                    "ports": {"type": "array", "x-kubernetes-list-type": "map",
                              "x-kubernetes-list-map-keys": ["name"],
                              "items": {"type": "object", "required": ["name"], "properties": {
                                  "name": {"type": "string"}, "port": {"type": "integer"}}}}}},
                "status": {"type": "object", "properties": {
                    "replicas": {"type": "integer"}, "selector": {"type": "string"},
                    "phase": {"type": "string"}}}}}},
        }],
    },
}

HELM = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.charts.example.net"},
    "spec": {
        "group": "charts.example.net", "scope": "Cluster",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                             "x-kubernetes-preserve-unknown-fields": True}}}},
        }],
    },
}


def api_client(server):
    return config.new_client_from_config(config_file=str(server.kubeconfig))


def raw(server, method: str, path: str, body=None, ctype: str = "application/json"):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + path, data=data, method=method, headers={
        "Authorization": f"Bearer {server.token}", "Content-Type": ctype, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, context=server.ssl_context(), timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_gone(list_fn, name, *args):
    """True once no object `name` exists (a list, then a watch from that list)."""
    listed = list_fn(*args, field_selector=f"metadata.name={name}")
    items = listed["items"] if isinstance(listed, dict) else listed.items
    if not items:
        return True
    rv = listed["metadata"]["resourceVersion"] if isinstance(listed, dict) else \
        listed.metadata.resource_version
    w = watch.Watch()
    for ev in w.stream(list_fn, *args, field_selector=f"metadata.name={name}",
                       resource_version=rv, timeout_seconds=40):
        if ev["type"] == "DELETED":
            w.stop()
            return True
    return False


def create_crd(server, crd: dict):
    ext = client.ApiextensionsV1Api(api_client(server))
    return ext.create_custom_resource_definition(crd)


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

def test_status_subresource_and_generation(server, kubectl):
    create_crd(server, OPERATOR)
    api = client.CustomObjectsApi(api_client(server))
    g, v, pl = "ops.example.org", "v1alpha1", "databases"
    made = api.create_namespaced_custom_object(g, v, "default", pl, {
        "apiVersion": f"{g}/{v}", "kind": "Database", "metadata": {"name": "pg"},
        "spec": {"replicas": 1, "engine": "postgres", "port": "db"}, "status": {"phase": "Lying"}})
    assert "status" not in made and made["metadata"]["generation"] == 1  # status only via /status
    st = api.patch_namespaced_custom_object_status(g, v, "default", pl, "pg", {
        "status": {"phase": "Running", "replicas": 1, "selector": "app=pg"}, "spec": {"engine": "mysql"}})
    assert st["status"]["phase"] == "Running" and st["spec"]["engine"] == "postgres"
    assert st["metadata"]["generation"] == 1  # a status write is no new generation
    upd = api.patch_namespaced_custom_object(g, v, "default", pl, "pg", {
        "spec": {"engine": "postgres16"}, "status": {"phase": "Ignored"}})
    assert upd["metadata"]["generation"] == 2 and upd["status"]["phase"] == "Running"
    lab = api.patch_namespaced_custom_object(g, v, "default", pl, "pg", {"metadata": {"labels": {"a": "b"}}})
    assert lab["metadata"]["generation"] == 2  # metadata changes are no new generation either
    # int-or-string: 5432 and "db" both fit; a boolean does not
    with pytest.raises(ApiException) as e:
        api.patch_namespaced_custom_object(g, v, "default", pl, "pg", {"spec": {"port": True}})
    assert e.value.status == 422
    assert 'spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: ' \
           '"boolean"' in json.loads(e.value.body)["message"]
    with pytest.raises(ApiException) as e:
        api.patch_namespaced_custom_object(g, v, "default", pl, "pg", {
            "spec": {"ports": [{"name": "a", "port": 1}, {"name": "a", "port": 2}]}})
    assert e.value.status == 422
    assert 'spec.ports[1]: Duplicate value: map[string]interface {}{"name":"a"}' in \
        json.loads(e.value.body)["message"]


def test_scale_subresource(server, kubectl):
    if "databases" not in kubectl("api-resources", "--api-group=ops.example.org"):
        create_crd(server, OPERATOR)
        client.CustomObjectsApi(api_client(server)).create_namespaced_custom_object(
            "ops.example.org", "v1alpha1", "default", "databases", {
                "apiVersion": "ops.example.org/v1alpha1", "kind": "Database", "metadata": {"name": "pg"},
                "spec": {"replicas": 1}})
    assert "database.ops.example.org/pg scaled" in kubectl("scale", "db", "pg", "--replicas=3")
    api = client.CustomObjectsApi(api_client(server))
    obj = api.get_namespaced_custom_object("ops.example.org", "v1alpha1", "default", "databases", "pg")
    assert obj["spec"]["replicas"] == 3
    scale = api.get_namespaced_custom_object_scale("ops.example.org", "v1alpha1", "default",
                                                   "databases", "pg")
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"]["replicas"] == 3
    p = kubectl.run("scale", "db", "pg", "--replicas=-1", check=False)
    assert p.returncode != 0


# ---- a Helm chart's CRD: unknown fields kept, cluster scope ----

def test_preserve_unknown_fields_and_cluster_scope(server, kubectl):
    create_crd(server, HELM)
    manifest = {"apiVersion": "charts.example.net/v1", "kind": "Widget", "metadata": {"name": "w1"},
                "spec": {"anything": {"nested": [1, {"deep": True}]}, "values": {"a": "b"}},
                "template": {"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "inner", "bogus": 1}, "data": {"k": "v"}},
                "dropped": 1}
    p = kubectl.run("apply", "-f", "-", input=yaml.safe_dump(manifest), check=False)
    assert p.returncode == 1
    assert 'unknown field "dropped", unknown field "template.metadata.bogus"' in p.stderr
    del manifest["dropped"]
    code, out = raw(server, "POST", "/apis/charts.example.net/v1/widgets", manifest)  # Warn: pruned
    assert code == 201
    obj = json.loads(kubectl("get", "widget", "w1", "-o", "json"))
    assert obj["spec"] == manifest["spec"]
    assert obj["template"]["data"] == {"k": "v"}
    assert "bogus" not in obj["template"]["metadata"]  # an embedded object's metadata is an ObjectMeta
    assert "namespace" not in obj["metadata"]
    code, _ = raw(server, "GET", "/apis/charts.example.net/v1/widgets/w1")
    assert code == 200
    out = kubectl("get", "widgets")
    assert out.split()[:3] == ["NAME", "AGE", "w1"]


# ---- invalid CRDs ----

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

def test_delete_crd_deletes_objects_and_endpoints(server, kubectl):
    crd = json.loads(json.dumps(HELM))
    crd["metadata"]["name"] = "gadgets.charts.example.net"
    crd["spec"]["names"] = {"plural": "gadgets", "kind": "Gadget"}
    crd["spec"]["scope"] = "Namespaced"
    create_crd(server, crd)
    api = client.CustomObjectsApi(api_client(server))
    for i in range(3):
        api.create_namespaced_custom_object("charts.example.net", "v1", "default", "gadgets", {
            "apiVersion": "charts.example.net/v1", "kind": "Gadget", "metadata": {"name": f"g{i}"}})
    # A watch open on the resource ends when its CRD goes (upstream tears the storage down).
    req = urllib.request.Request(server.url + "/apis/charts.example.net/v1/namespaces/default/gadgets"
                                 "?watch=true&timeoutSeconds=120",
                                 headers={"Authorization": f"Bearer {server.token}"})
    stream = urllib.request.urlopen(req, context=server.ssl_context(), timeout=60)
    ended = threading.Event()
    lines: list[bytes] = []

    def read():
        for ln in stream:
            lines.append(ln)
        ended.set()
    threading.Thread(target=read, daemon=True).start()
    kubectl("delete", "crd", "gadgets.charts.example.net", "--timeout=20s")
    assert ended.wait(30), "the watch stayed open after its CRD was deleted"
    types = [json.loads(ln)["type"] for ln in lines]
    assert types.count("ADDED") == 3 and types.count("DELETED") == 3
    code, body = raw(server, "GET", "/apis/charts.example.net/v1/namespaces/default/gadgets")
    assert code == 404
    code, _ = raw(server, "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                  "gadgets.charts.example.net")
    assert code == 404
    # Created again, the resource starts empty: the objects went with the CRD.
    create_crd(server, crd)
    assert api.list_namespaced_custom_object("charts.example.net", "v1", "default", "gadgets")["items"] == []
    code, _ = raw(server, "DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                  "gadgets.charts.example.net")
    assert code == 200


def test_crds_survive_restart(server_factory):
    srv = server_factory()
    create_crd(srv, OPERATOR)
    api = client.CustomObjectsApi(api_client(srv))
    api.create_namespaced_custom_object("ops.example.org", "v1alpha1", "default", "databases", {
        "apiVersion": "ops.example.org/v1alpha1", "kind": "Database", "metadata": {"name": "kept"}})
    srv.stop()
    again = server_factory(srv.data_dir, srv.port)
    api = client.CustomObjectsApi(api_client(again))
    got = api.get_namespaced_custom_object("ops.example.org", "v1alpha1", "default", "databases", "kept")
    assert got["metadata"]["name"] == "kept"


# ---- for server-side apply ----

def test_list_types_per_path():
    schema = OPERATOR["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert list_types(schema) == {"spec.ports": {"listType": "map", "listMapKeys": ["name"]}}
    crontab = yaml.safe_load(CRONTAB)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert list_types(crontab) == {"spec.tags": {"listType": "set"}}
    nested = {"type": "object", "properties": {"m": {"type": "object", "x-kubernetes-map-type": "atomic",
              "additionalProperties": {"type": "array", "x-kubernetes-list-type": "atomic",
                                       "items": {"type": "string"}}}}}
    assert list_types(nested) == {"m": {"mapType": "atomic"}, "m{}": {"listType": "atomic"}}


def test_embedded_resource_needs_apiversion_and_kind(server):
    if raw(server, "GET", "/apis/charts.example.net/v1/widgets")[0] != 200:
        create_crd(server, HELM)
    code, body = raw(server, "POST", "/apis/charts.example.net/v1/widgets", {
        "apiVersion": "charts.example.net/v1", "kind": "Widget", "metadata": {"name": "w-bad"},
        "template": {"metadata": {"name": "x"}}})
    assert code == 422
    assert body["message"] == ('Widget.charts.example.net "w-bad" is invalid: [template.apiVersion: '
                               'Required value: must not be empty, template.kind: Required value: '
                               'must not be empty]')


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


def test_selectable_fields_and_deprecated_version(server, kubectl):
    crd = json.loads(json.dumps(OPERATOR))
    crd["metadata"]["name"] = "caches.ops.example.org"
    crd["spec"]["names"] = {"plural": "caches", "singular": "cache", "kind": "Cache"}
    v = crd["spec"]["versions"][0]
    v["selectableFields"] = [{"jsonPath": ".spec.engine"}, {"jsonPath": ".spec.replicas"}]
    old = json.loads(json.dumps(v))
    old.update({"name": "v1alpha0", "storage": False, "deprecated": True})
    crd["spec"]["versions"].append(old)
    create_crd(server, crd)
    for name, engine, n in (("c1", "redis", 1), ("c2", "memcached", 2)):
        kubectl("apply", "-f", "-", input=yaml.safe_dump({
            "apiVersion": "ops.example.org/v1alpha1", "kind": "Cache", "metadata": {"name": name},
            "spec": {"engine": engine, "replicas": n}}))
    out = kubectl("get", "caches", "--field-selector", "spec.engine=redis", "-o", "name")
    assert out.split() == ["cache.ops.example.org/c1"]
    out = kubectl("get", "caches", "--field-selector", "spec.replicas!=1", "-o", "name")
    assert out.split() == ["cache.ops.example.org/c2"]
    p = kubectl.run("get", "caches", "--field-selector", "spec.port=1", check=False)
    assert p.returncode == 1
    assert '"spec.port" is not a known field selector: only "metadata.name", "metadata.namespace"' in p.stderr
    p = kubectl.run("get", "caches.v1alpha0.ops.example.org", "-o", "name")
    assert "Warning: ops.example.org/v1alpha0 Cache is deprecated; use ops.example.org/v1alpha1 Cache" \
        in p.stderr
    assert p.stdout.split() == ["cache.ops.example.org/c1", "cache.ops.example.org/c2"]
    bad = json.loads(json.dumps(crd))
    bad["metadata"]["name"] = "caches2.ops.example.org"
    bad["spec"]["names"] = {"plural": "caches2", "singular": "cache2", "kind": "Cache2"}
    bad["spec"]["versions"][0]["selectableFields"] = [{"jsonPath": ".spec.ports"}]
    code, body = raw(server, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", bad)
    assert code == 422 and 'spec.versions[0].selectableFields[0].jsonPath: Invalid value: ' \
        '".spec.ports": must point to a field of type string, boolean or integer' in body["message"]


def test_namespace_deletion_removes_custom_resources(tmp_path):
    """With the whole control plane: a CRD created after the controllers started; deleting a
    namespace deletes its custom resources before the namespace goes."""
    from tests.apiserver import start_server
    srv = start_server(tmp_path / "data", None, bare=False)
    try:
        create_crd(srv, OPERATOR)
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}}
        assert raw(srv, "POST", "/api/v1/namespaces", ns)[0] == 201
        code, _ = raw(srv, "POST", "/apis/ops.example.org/v1alpha1/namespaces/doomed/databases", {
            "apiVersion": "ops.example.org/v1alpha1", "kind": "Database", "metadata": {"name": "inside"}})
        assert code == 201
        v1 = client.CoreV1Api(api_client(srv))
        v1.delete_namespace("doomed")
        assert wait_gone(v1.list_namespace, "doomed")
        code, _ = raw(srv, "GET", "/api/v1/namespaces/doomed")
        assert code == 404
        code, body = raw(srv, "GET", "/apis/ops.example.org/v1alpha1/databases")
        assert code == 200 and body["items"] == []
    finally:
        srv.stop()


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


def test_garbage_collection_with_custom_resource_owners(tmp_path):
    """The operator pattern, with the whole control plane and a CRD created after the
    controllers started: objects owned by a custom resource go when it goes (background), and
    a foreground delete of the custom resource waits for its dependents."""
    from tests.apiserver import start_server
    srv = start_server(tmp_path / "data", None, bare=False)
    try:
        create_crd(srv, OPERATOR)
        v1 = client.CoreV1Api(api_client(srv))
        api = client.CustomObjectsApi(api_client(srv))
        g, v, pl = "ops.example.org", "v1alpha1", "databases"

        def owned(owner_name):
            owner = api.create_namespaced_custom_object(g, v, "default", pl, {
                "apiVersion": f"{g}/{v}", "kind": "Database", "metadata": {"name": owner_name}})
            v1.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(
                name=f"{owner_name}-config", owner_references=[client.V1OwnerReference(
                    api_version=f"{g}/{v}", kind="Database", name=owner_name,
                    uid=owner["metadata"]["uid"], block_owner_deletion=True)])))


        owned("bg")
        api.delete_namespaced_custom_object(g, v, "default", pl, "bg")
        assert wait_gone(v1.list_namespaced_config_map, "bg-config", "default")

        owned("fg")
        api.delete_namespaced_custom_object(g, v, "default", pl, "fg",
                                            body=client.V1DeleteOptions(propagation_policy="Foreground"))
        assert wait_gone(v1.list_namespaced_config_map, "fg-config", "default")
        assert wait_gone(lambda **kw: api.list_namespaced_custom_object(g, v, "default", pl, **kw), "fg")
    finally:
        srv.stop()


def test_validation_ratcheting(server):
    """A schema tightened after objects exist: an update that leaves the now-invalid value as it
    was is accepted; one that changes it must make it valid."""
    crd = json.loads(json.dumps(OPERATOR))
    crd["metadata"]["name"] = "queues.ops.example.org"
    crd["spec"]["names"] = {"plural": "queues", "singular": "queue", "kind": "Queue"}
    crd["spec"]["versions"][0].pop("subresources")
    created = create_crd(server, crd)
    api = client.CustomObjectsApi(api_client(server))
    g, v = "ops.example.org", "v1alpha1"
    api.create_namespaced_custom_object(g, v, "default", "queues", {
        "apiVersion": f"{g}/{v}", "kind": "Queue", "metadata": {"name": "q"},
        "spec": {"replicas": 50, "engine": "a"}})
    ext = client.ApiextensionsV1Api(api_client(server))
    tight = ext.read_custom_resource_definition("queues.ops.example.org")
    tight.spec.versions[0].schema.open_apiv3_schema.properties["spec"].properties["replicas"].maximum = 10
    ext.replace_custom_resource_definition("queues.ops.example.org", tight)
    # replicas stays 50 (invalid now) while engine changes: accepted
    out = api.patch_namespaced_custom_object(g, v, "default", "queues", "q", {"spec": {"engine": "b"}})
    assert out["spec"] == {"replicas": 50, "engine": "b"}
    with pytest.raises(ApiException) as e:
        api.patch_namespaced_custom_object(g, v, "default", "queues", "q", {"spec": {"replicas": 40}})
    assert e.value.status == 422
    assert "spec.replicas: Invalid value: 40: spec.replicas in body should be less than or equal to 10" \
        in json.loads(e.value.body)["message"]
    assert created.metadata.name == "queues.ops.example.org"


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
