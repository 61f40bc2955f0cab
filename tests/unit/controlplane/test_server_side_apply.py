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
