"""kubectl with `kind: List` files: it validates their items on the client, against /openapi/v2
fetched as gnostic protobuf (controlplane/apiserver/openapi/v2proto.py)."""

import json
import urllib.request

LIST = """
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: listed, labels: {app: listed}}
  spec: {containers: [{name: c, image: busybox}]}
- apiVersion: v1
  kind: Service
  metadata: {name: listed}
  spec: {selector: {app: listed}, ports: [{port: 80}]}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: listed}
  data: {k: v}
"""


def test_create_and_apply_a_list(kubectl):
    out = kubectl("create", "-f", "-", input=LIST)
    assert out.split("\n")[:3] == ["pod/listed created", "service/listed created",
                                   "configmap/listed created"]
    out = kubectl("apply", "-f", "-", input=LIST.replace("k: v", "k: w"))
    assert "configmap/listed configured" in out
    assert kubectl("get", "cm", "listed", "-o", "jsonpath={.data.k}") == "w"


def test_get_output_piped_back_into_apply(kubectl):
    kubectl("create", "configmap", "piped", "--from-literal=a=1")
    listed = kubectl("get", "cm", "-l", "", "-o", "yaml")
    assert listed.startswith("apiVersion: v1\nitems:") and "kind: List" in listed
    out = kubectl("apply", "-f", "-", input=listed.replace('a: "1"', 'a: "2"'))
    assert "configmap/piped configured" in out
    assert kubectl("get", "cm", "piped", "-o", "jsonpath={.data.a}") == "2"


def test_list_items_validated_like_upstream(kubectl):
    bad = LIST.replace("containers:", "containerz:").replace("name: listed", "name: bad")
    p = kubectl.run("create", "-f", "-", input=bad, check=False)
    assert p.returncode == 1
    assert 'unknown field "containerz" in io.k8s.api.core.v1.PodSpec' in p.stderr
    assert 'missing required field "containers"' in p.stderr
    assert kubectl.run("get", "svc", "bad", check=False).returncode == 1  # nothing was created
    # --validate=false leaves it to the server, which drops the unknown field (strict is off)
    p = kubectl.run("create", "--validate=false", "-f", "-", input=bad, check=False)
    assert "service/bad created" in p.stdout


def test_openapi_v2_content_types(server):
    ctx = server.ssl_context()

    def get(accept):
        req = urllib.request.Request(server.url + "/openapi/v2", headers={
            "Authorization": f"Bearer {server.token}", "Accept": accept})
        try:
            with urllib.request.urlopen(req, context=ctx) as r:
                return r.status, r.headers["Content-Type"], r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers["Content-Type"], e.read()

    code, ctype, body = get("application/json")
    assert code == 200 and ctype.startswith("application/json")
    assert "io.k8s.api.core.v1.Pod" in json.loads(body)["definitions"]
    code, ctype, body = get("application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
    assert code == 200 and ctype == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert body.startswith(b"\n\x032.0") and b"io.k8s.api.core.v1.PodSpec" in body
    code, _, body = get("application/vnd.kubernetes.protobuf")
    assert code == 406 and json.loads(body)["reason"] == "NotAcceptable"
