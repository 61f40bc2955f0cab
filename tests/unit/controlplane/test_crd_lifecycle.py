"""CustomResourceDefinitions as operators and Helm charts use them: status and scale
subresources, unknown fields kept, cluster scope, selectable fields, deprecated versions,
validation ratcheting, and the life cycle around them — deleting a CRD (objects, endpoints,
watches), restarts, namespace deletion and garbage collection with custom resource owners
(the last two with the whole control plane).
"""

import json
import threading
import urllib.request

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from controlplane.apiserver.apiextensions import list_types
from tests.unit.controlplane.crds import (
    CRONTAB, HELM, OPERATOR, api_client, create_crd, raw, wait_gone)


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
