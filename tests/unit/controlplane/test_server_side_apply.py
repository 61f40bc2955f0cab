"""Server-side apply and managedFields, with the real kubectl 1.37 and the kubernetes Python
client against our server; each test asserts what upstream shows (exit code, message, object)."""

from __future__ import annotations

import json

import yaml

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: web
        image: {image}
"""


def _deploy(name, replicas=1, image="nginx:1.25"):
    return DEPLOY.format(name=name, replicas=replicas, image=image)


def _get(kubectl, kind, name):
    return json.loads(kubectl("get", kind, name, "-o", "json", "--show-managed-fields"))


def _managers(obj):
    return {(e["manager"], e["operation"]) for e in obj["metadata"].get("managedFields", [])}


def _entry(obj, manager, operation):
    for e in obj["metadata"]["managedFields"]:
        if e["manager"] == manager and e["operation"] == operation:
            return e
    raise AssertionError(f"no {manager}/{operation} in {obj['metadata'].get('managedFields')}")


def test_create_records_an_update_manager(kubectl):
    kubectl("create", "-f", "-", input=_deploy("mf-create"))
    d = _get(kubectl, "deploy", "mf-create")
    e = _entry(d, "kubectl-create", "Update")
    assert e["apiVersion"] == "apps/v1" and e["fieldsType"] == "FieldsV1" and e["time"]
    f = e["fieldsV1"]
    assert f["f:metadata"]["f:labels"] == {".": {}, "f:app": {}}
    assert "." not in f["f:spec"] and f["f:spec"]["f:replicas"] == {}
    web = f["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert web["."] == {} and web["f:image"] == {} and web["f:imagePullPolicy"] == {}  # defaults too
    assert web["f:resources"] == {}  # an empty struct inside a new item is a leaf
    # Go value structs exist, empty, in any decoded object: adding into one does not add the
    # struct itself; a pointer struct (rollingUpdate) or a map (labels) is added with a "."
    strategy = f["f:spec"]["f:strategy"]
    assert "." not in strategy and strategy["f:rollingUpdate"]["."] == {}
    # a field without omitempty (containers) is null in the zero value: no "." either
    assert "." not in f["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert "f:uid" not in f["f:metadata"] and "f:status" not in f
    # hidden unless asked for, as kubectl does
    plain = json.loads(kubectl("get", "deploy", "mf-create", "-o", "json"))
    assert "managedFields" not in plain["metadata"]


def test_server_side_apply_creates_and_owns_only_what_it_applied(kubectl):
    out = kubectl("apply", "--server-side", "-f", "-", input=_deploy("ssa-new", 2))
    assert "deployment.apps/ssa-new serverside-applied" in out
    d = _get(kubectl, "deploy", "ssa-new")
    assert _managers(d) == {("kubectl", "Apply")}
    f = _entry(d, "kubectl", "Apply")["fieldsV1"]
    assert f["f:spec"]["f:replicas"] == {}
    web = f["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert web == {".": {}, "f:image": {}, "f:name": {}}  # not the defaulted fields
    assert d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    # unchanged re-apply: nothing written
    rv = d["metadata"]["resourceVersion"]
    out = kubectl("apply", "--server-side", "-f", "-", input=_deploy("ssa-new", 2))
    assert "serverside-applied" in out
    assert _get(kubectl, "deploy", "ssa-new")["metadata"]["resourceVersion"] == rv


def test_conflict_with_client_side_apply_then_force(kubectl):
    kubectl("apply", "-f", "-", input=_deploy("ssa-conflict", 1))
    p = kubectl.run("apply", "--server-side", "--field-manager=ci", "-f", "-",
                    input=_deploy("ssa-conflict", 3), check=False)
    assert p.returncode == 1
    assert ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: '
            '.spec.replicas') in p.stderr
    assert "--force-conflicts" in p.stderr  # kubectl's own advice follows the server's message
    assert _get(kubectl, "deploy", "ssa-conflict")["spec"]["replicas"] == 1
    kubectl("apply", "--server-side", "--field-manager=ci", "--force-conflicts", "-f", "-",
            input=_deploy("ssa-conflict", 3))
    d = _get(kubectl, "deploy", "ssa-conflict")
    assert d["spec"]["replicas"] == 3
    # The forced field moved to ci; kubectl then moved the rest of the client-side apply
    # manager's fields to ci (csaupgrade: that manager owns the last-applied annotation) and
    # applied again, which dropped what ci does not apply: the annotation (kept only for the
    # default manager `kubectl`) and its ownership of defaulted fields (defaulted again).
    assert _managers(d) == {("ci", "Apply")}
    ci = _entry(d, "ci", "Apply")["fieldsV1"]
    assert "f:replicas" in ci["f:spec"] and "f:annotations" not in ci["f:metadata"]
    assert "annotations" not in d["metadata"]
    assert d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"


def test_two_conflicting_managers_listed_as_upstream(kubectl):
    kubectl("apply", "--server-side", "--field-manager=a", "-f", "-", input=_deploy("ssa-two", 1))
    kubectl("patch", "deploy", "ssa-two", "--field-manager=b", "-p",
            '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.26"}]}}}}')
    p = kubectl.run("apply", "--server-side", "--field-manager=c", "-f", "-",
                    input=_deploy("ssa-two", 5, "nginx:1.27"), check=False)
    assert p.returncode == 1
    assert ('Apply failed with 2 conflicts: conflicts with "a"\n- .spec.replicas\n'
            'conflicts with "b" using apps/v1\n'
            '- .spec.template.spec.containers[name="web"].image') in p.stderr


def test_apply_removes_fields_it_no_longer_applies(kubectl):
    two = _deploy("ssa-prune").replace("  labels: {app: ssa-prune}",
                                        "  labels: {app: ssa-prune}\n  annotations: {a: '1', b: '2'}")
    kubectl("apply", "--server-side", "-f", "-", input=two)
    kubectl("annotate", "deploy", "ssa-prune", "c=3")   # another manager's field survives
    one = two.replace(", b: '2'", "")
    kubectl("apply", "--server-side", "-f", "-", input=one)
    ann = _get(kubectl, "deploy", "ssa-prune")["metadata"]["annotations"]
    assert ann == {"a": "1", "c": "3"}
    # a field shared with another manager stays when one of them stops applying it
    kubectl("apply", "--server-side", "--field-manager=other", "-f", "-", input="""
apiVersion: apps/v1
kind: Deployment
metadata: {name: ssa-prune, annotations: {a: '1'}}
""")
    kubectl("apply", "--server-side", "-f", "-", input=one.replace("annotations: {a: '1'}",
                                                                   "annotations: {}"))
    assert _get(kubectl, "deploy", "ssa-prune")["metadata"]["annotations"] == {"a": "1", "c": "3"}


def test_keyed_lists_merge_items_of_different_managers(kubectl):
    kubectl("apply", "--server-side", "--field-manager=app", "-f", "-", input=_deploy("ssa-lists"))
    kubectl("apply", "--server-side", "--field-manager=sidecar", "-f", "-", input="""
apiVersion: apps/v1
kind: Deployment
metadata: {name: ssa-lists}
spec:
  template:
    spec:
      containers:
      - {name: proxy, image: envoy:1}
""")
    d = _get(kubectl, "deploy", "ssa-lists")
    names = [c["name"] for c in d["spec"]["template"]["spec"]["containers"]]
    assert names == ["web", "proxy"]
    # the sidecar's manager stops applying its container: it goes, web stays
    kubectl("apply", "--server-side", "--field-manager=sidecar", "-f", "-", input="""
apiVersion: apps/v1
kind: Deployment
metadata: {name: ssa-lists}
""")
    d = _get(kubectl, "deploy", "ssa-lists")
    assert [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["web"]
    assert ("sidecar", "Apply") not in _managers(d)


def test_set_lists_union_and_atomic_lists_replace(kubectl):
    kubectl("apply", "--server-side", "--field-manager=one", "-f", "-", input="""
apiVersion: v1
kind: ConfigMap
metadata: {name: ssa-set, finalizers: [example.com/a]}
data: {k: v}
""")
    kubectl("apply", "--server-side", "--field-manager=two", "-f", "-", input="""
apiVersion: v1
kind: ConfigMap
metadata: {name: ssa-set, finalizers: [example.com/b]}
""")
    cm = _get(kubectl, "cm", "ssa-set")
    assert cm["metadata"]["finalizers"] == ["example.com/a", "example.com/b"]
    two = _entry(cm, "two", "Apply")["fieldsV1"]
    assert two == {"f:metadata": {"f:finalizers": {'v:"example.com/b"': {}}}}
    kubectl("patch", "cm", "ssa-set", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')


def test_dry_run_changes_nothing(kubectl):
    kubectl("apply", "--server-side", "-f", "-", input=_deploy("ssa-dry"))
    before = _get(kubectl, "deploy", "ssa-dry")
    out = kubectl("apply", "--server-side", "--dry-run=server", "-o", "json", "-f", "-",
                  input=_deploy("ssa-dry", 4))
    assert json.loads(out)["spec"]["replicas"] == 4
    after = _get(kubectl, "deploy", "ssa-dry")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"]["replicas"] == 1
    p = kubectl.run("apply", "--server-side", "--dry-run=server", "-f", "-",
                    input=_deploy("ssa-dry-absent"), check=False)
    assert p.returncode == 0
    assert kubectl.run("get", "deploy", "ssa-dry-absent", check=False).returncode == 1


def test_client_side_to_server_side_migration(kubectl):
    kubectl("apply", "-f", "-", input=_deploy("ssa-migrate", 2))
    d = _get(kubectl, "deploy", "ssa-migrate")
    assert ("kubectl-client-side-apply", "Update") in _managers(d)
    kubectl("apply", "--server-side", "-f", "-", input=_deploy("ssa-migrate", 2))
    d = _get(kubectl, "deploy", "ssa-migrate")
    # kubectl moved the client-side apply fields into its Apply entry (csaupgrade), after
    # handing the last-applied annotation to a manager of its own so that it stays
    assert _managers(d) == {("kubectl", "Apply"), ("kubectl-last-applied", "Apply")}
    f = _entry(d, "kubectl", "Apply")["fieldsV1"]
    assert "f:replicas" in f["f:spec"] and "f:imagePullPolicy" not in json.dumps(f)
    la = _entry(d, "kubectl-last-applied", "Apply")["fieldsV1"]
    assert la == {"f:metadata": {"f:annotations": {
        "f:kubectl.kubernetes.io/last-applied-configuration": {}}}}
    assert "kubectl.kubernetes.io/last-applied-configuration" in d["metadata"]["annotations"]
    # a value change while migrating is no conflict: the annotation shows it was kubectl's
    kubectl("apply", "-f", "-", input=_deploy("ssa-migrate2", 2))
    kubectl("apply", "--server-side", "-f", "-", input=_deploy("ssa-migrate2", 3))
    d = _get(kubectl, "deploy", "ssa-migrate2")
    assert d["spec"]["replicas"] == 3
    last = json.loads(d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["replicas"] == 3  # kept in step by the server for kubectl's manager
    # and back to client-side apply computes its patch from that annotation
    kubectl("apply", "-f", "-", input=_deploy("ssa-migrate2", 3, "nginx:1.26"))
    assert _get(kubectl, "deploy", "ssa-migrate2")["spec"]["template"]["spec"]["containers"][0][
        "image"] == "nginx:1.26"


def test_updates_by_one_manager_collapse_and_cap_at_ten(kubectl):
    kubectl("create", "configmap", "ssa-cap", "--from-literal=k0=v")
    for i in range(3):
        kubectl("patch", "cm", "ssa-cap", "--field-manager=same", "-p", f'{{"data":{{"s{i}":"v"}}}}')
    cm = _get(kubectl, "cm", "ssa-cap")
    same = [e for e in cm["metadata"]["managedFields"] if e["manager"] == "same"]
    assert len(same) == 1 and set(same[0]["fieldsV1"]["f:data"]) == {"f:s0", "f:s1", "f:s2"}
    for i in range(12):
        kubectl("patch", "cm", "ssa-cap", f"--field-manager=m{i}", "-p", f'{{"data":{{"m{i}":"v"}}}}')
    entries = _get(kubectl, "cm", "ssa-cap")["metadata"]["managedFields"]
    assert len(entries) == 10
    assert "ancient-changes" in {e["manager"] for e in entries}


def test_bad_apply_requests(server, kubectl):
    import ssl
    import urllib.error
    import urllib.request

    def patch(path, body, ctype, query=""):
        req = urllib.request.Request(server.url + path + query, data=body.encode(), method="PATCH",
                                     headers={"Content-Type": ctype,
                                              "Authorization": f"Bearer {server.token}"})
        try:
            with urllib.request.urlopen(req, context=server.ssl_context()) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    kubectl("create", "configmap", "ssa-bad", "--from-literal=k=v")
    path = "/api/v1/namespaces/default/configmaps/ssa-bad"
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa-bad}\ndata: {k: w}\n"
    code, st = patch(path, body, "application/apply-patch+yaml")
    assert code == 422 and st["message"] == ('PatchOptions.meta.k8s.io "" is invalid: fieldManager: '
                                             'Required value: is required for apply patch')
    code, st = patch(path, '{"data":{"k":"w"}}', "application/merge-patch+json", "?force=true")
    assert code == 422 and "force: Forbidden: may not be specified for non-apply patch" in st["message"]
    with_mf = body.replace("name: ssa-bad}", "name: ssa-bad, managedFields: [{manager: x}]}")
    code, st = patch(path, with_mf, "application/apply-patch+yaml", "?fieldManager=t")
    assert code == 400 and st["message"] == "metadata.managedFields must be nil"
    code, st = patch(path, body, "application/apply-patch+yaml", "?fieldManager=t")
    assert code == 409 and st["reason"] == "Conflict"
    assert st["details"]["causes"] == [{"reason": "FieldManagerConflict",
                                        "message": 'conflict with "kubectl-create" using v1',
                                        "field": ".data.k"}]
    code, st = patch(path, body, "application/apply-patch+yaml", "?fieldManager=t&force=true")
    assert code == 200 and st["data"] == {"k": "w"}


def test_python_client_apply_and_managed_fields(server):
    import pytest
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    api = config.new_client_from_config(config_file=str(server.kubeconfig))
    core = client.CoreV1Api(api)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "py-ssa"},
          "data": {"a": "1"}}
    made = core.patch_namespaced_config_map("py-ssa", "default", cm, field_manager="py-controller",
                                            _content_type="application/apply-patch+yaml")
    assert made.data == {"a": "1"}
    [entry] = made.metadata.managed_fields
    assert (entry.manager, entry.operation, entry.api_version, entry.fields_type) == \
        ("py-controller", "Apply", "v1", "FieldsV1")
    assert entry.fields_v1 == {"f:data": {"f:a": {}}}
    # a plain update with no fieldManager is recorded under the client's user agent product
    api.user_agent = "my-operator/1.0 (linux)"
    core.patch_namespaced_config_map("py-ssa", "default", {"data": {"a": "2", "b": "x"}})
    got = core.read_namespaced_config_map("py-ssa", "default")
    mf = {(e.manager, e.operation): e.fields_v1 for e in got.metadata.managed_fields}
    assert mf == {("my-operator", "Update"): {"f:data": {"f:a": {}, "f:b": {}}}}  # took "a" over
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_config_map("py-ssa", "default", {**cm, "data": {"a": "3"}},
                                         field_manager="py-controller",
                                         _content_type="application/apply-patch+yaml")
    assert e.value.status == 409
    assert json.loads(e.value.body)["message"] == (
        'Apply failed with 1 conflict: conflict with "my-operator" using v1: .data.a')
    forced = core.patch_namespaced_config_map("py-ssa", "default", {**cm, "data": {"a": "3"}},
                                              field_manager="py-controller", force=True,
                                              _content_type="application/apply-patch+yaml")
    assert forced.data == {"a": "3", "b": "x"}
    mf = {(e.manager, e.operation): e.fields_v1 for e in forced.metadata.managed_fields}
    assert mf == {("py-controller", "Apply"): {"f:data": {"f:a": {}}},
                  ("my-operator", "Update"): {"f:data": {"f:b": {}}}}
    # managedFields: [{}] is how a client clears them (the clearing write owns nothing)
    cleared = core.patch_namespaced_config_map("py-ssa", "default",
                                               {"metadata": {"managedFields": [{}]}})
    assert cleared.metadata.managed_fields is None
    core.delete_namespaced_config_map("py-ssa", "default")


def test_apply_through_the_status_subresource(kubectl):
    kubectl("apply", "--server-side", "-f", "-", input=_deploy("ssa-status"))
    kubectl("apply", "--server-side", "--subresource=status", "--field-manager=st", "-f", "-",
            input="""
apiVersion: apps/v1
kind: Deployment
metadata: {name: ssa-status, labels: {ignored: "yes"}}
spec: {replicas: 9}
status: {observedGeneration: 1, replicas: 7}
""")
    d = _get(kubectl, "deploy", "ssa-status")
    assert d["status"]["replicas"] == 7
    assert d["spec"]["replicas"] == 1 and "ignored" not in d["metadata"]["labels"]
    st = _entry(d, "st", "Apply")
    assert st["subresource"] == "status"
    assert st["fieldsV1"] == {"f:status": {"f:observedGeneration": {}, "f:replicas": {}}}


def test_duplicate_list_items_in_an_applied_object(kubectl):
    dup = _deploy("ssa-dup").replace("      - name: web\n        image: nginx:1.25\n",
                                      "      - name: web\n        image: nginx:1.25\n"
                                      "      - name: web\n        image: nginx:1.26\n")
    p = kubectl.run("apply", "--server-side", "-f", "-", input=dup, check=False)
    assert p.returncode == 1
    assert ('failed to create typed patch object (default/ssa-dup; apps/v1, Kind=Deployment): '
            '.spec.template.spec.containers: duplicate entries for key [name="web"]') in p.stderr


def _round_trip_kinds():
    from tests.unit.controlplane.test_round_trip import MANIFESTS
    return MANIFESTS


@__import__("pytest").mark.parametrize("kind", sorted(_round_trip_kinds()))
def test_every_kind_applies_server_side_and_reapplies_unchanged(kubectl, kind):
    api_version, body = _round_trip_kinds()[kind]
    name = "ssa-" + kind.lower()[:40]
    manifest = yaml.safe_dump({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, **body})
    ref = f"{kind.lower()}.{api_version.split('/')[0]}" if "/" in api_version else kind.lower()
    assert "serverside-applied" in kubectl("apply", "--server-side", "-f", "-", input=manifest)
    got = _get(kubectl, ref, name)
    # an apply that names nothing but the object owns nothing: no entry (upstream drops
    # empty sets, the applier's too)
    assert _managers(got) == ({("kubectl", "Apply")} if body else set())
    kubectl("apply", "--server-side", "-f", "-", input=manifest)
    again = _get(kubectl, ref, name)
    if kind != "Secret":  # stringData is write-only: applying it again is a change, as upstream
        assert again["metadata"]["resourceVersion"] == got["metadata"]["resourceVersion"]
    kubectl("delete", ref, name, "--wait=false")


GATEWAY_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gateways.ssa.example.com}
spec:
  group: ssa.example.com
  scope: Namespaced
  names: {plural: gateways, singular: gateway, kind: Gateway}
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
            properties:
              listeners:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                items:
                  type: object
                  required: [name]
                  properties:
                    name: {type: string}
                    port: {type: integer}
              hosts:
                type: array
                items: {type: string}
"""


def test_custom_resources_merge_lists_by_their_crds_list_type(kubectl):
    """A CRD's x-kubernetes-list-type: map makes a keyed list for server-side apply (two managers
    each own their listener); a list without one is atomic (the second applier takes it whole,
    after a conflict)."""
    kubectl("apply", "-f", "-", input=GATEWAY_CRD)
    kubectl("wait", "--for=condition=Established", "crd/gateways.ssa.example.com", "--timeout=20s")
    kubectl("apply", "--server-side", "--field-manager=team-a", "-f", "-", input="""
apiVersion: ssa.example.com/v1
kind: Gateway
metadata: {name: gw}
spec:
  listeners: [{name: http, port: 80}]
  hosts: [a.example.com]
""")
    kubectl("apply", "--server-side", "--field-manager=team-b", "-f", "-", input="""
apiVersion: ssa.example.com/v1
kind: Gateway
metadata: {name: gw}
spec:
  listeners: [{name: https, port: 443}]
""")
    gw = _get(kubectl, "gateway", "gw")
    assert [(x["name"], x["port"]) for x in gw["spec"]["listeners"]] == [("http", 80), ("https", 443)]
    owned_b = _entry(gw, "team-b", "Apply")["fieldsV1"]["f:spec"]["f:listeners"]
    assert list(owned_b) == ['k:{"name":"https"}']
    # hosts is atomic: another manager's different value conflicts with team-a's ownership
    out = kubectl.run("apply", "--server-side", "--field-manager=team-b", "-f", "-", check=False, input="""
apiVersion: ssa.example.com/v1
kind: Gateway
metadata: {name: gw}
spec:
  listeners: [{name: https, port: 443}]
  hosts: [b.example.com]
""")
    assert out.returncode != 0 and 'conflict with "team-a"' in out.stderr and ".spec.hosts" in out.stderr
