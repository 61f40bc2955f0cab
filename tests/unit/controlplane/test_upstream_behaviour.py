"""Departures from upstream found by trying the server as a new user would (issue 12, "Wrong
today"): each test drives the real kubectl 1.37 or the kubernetes client and asserts what a real
cluster answers — exit code, message, stored object."""

import base64
import ipaddress
import json
import urllib.error
import urllib.request

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException


def api(server):
    return client.CoreV1Api(config.new_client_from_config(config_file=str(server.kubeconfig)))


def raw(server, method, path, body=None, headers=None):
    """One HTTP request; returns (status, decoded JSON body)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + path, data=data, method=method, headers={
        "Authorization": f"Bearer {server.token}", "Content-Type": "application/json",
        **(headers or {})})
    try:
        with urllib.request.urlopen(req, context=server.ssl_context(), timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def cm(name, labels=None):
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data={"k": "v"})


# ---- LIST ----

def test_a_negative_limit_is_no_limit(server):
    for name in ("neg-limit-a", "neg-limit-b"):
        assert raw(server, "POST", "/api/v1/namespaces/default/configmaps",
                   {"metadata": {"name": name}, "data": {"k": "v"}})[0] == 201
    status, body = raw(server, "GET", "/api/v1/namespaces/default/configmaps?limit=-219")
    assert status == 200 and "continue" not in body["metadata"]
    assert {"neg-limit-a", "neg-limit-b"} <= {i["metadata"]["name"] for i in body["items"]}


# ---- DeleteOptions: body and query ----

def test_kubectl_server_dry_run_delete_keeps_the_object(kubectl):
    kubectl("create", "configmap", "dry-keep", "--from-literal=a=1")
    kubectl("label", "configmap", "dry-keep", "dry=yes")
    out = kubectl("delete", "configmap", "dry-keep", "--dry-run=server")
    assert 'configmap "dry-keep" deleted' in out and "(server dry run)" in out
    out = kubectl("delete", "configmap", "-l", "dry=yes", "--dry-run=server")
    assert "dry-keep" in out and "server dry run" in out
    assert kubectl("get", "configmap", "dry-keep", "-o", "name").strip() == "configmap/dry-keep"
    kubectl("delete", "configmap", "dry-keep")


def test_delete_options_in_the_body_all_count(server):
    v1 = api(server)
    made = v1.create_namespaced_config_map("default", cm("body-opts"))
    # dryRun in the body
    v1.delete_namespaced_config_map("body-opts", "default", body=client.V1DeleteOptions(dry_run=["All"]))
    assert v1.read_namespaced_config_map("body-opts", "default").metadata.uid == made.metadata.uid
    # preconditions: a wrong uid or resourceVersion is a 409, and nothing is deleted
    for pre in ({"uid": "not-the-uid"}, {"resourceVersion": "1"}):
        status, body = raw(server, "DELETE", "/api/v1/namespaces/default/configmaps/body-opts",
                           {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": pre})
        assert status == 409 and body["reason"] == "Conflict" and "Precondition failed" in body["message"]
    # propagationPolicy: Orphan and Foreground leave their finalizer for the garbage collector
    status, body = raw(server, "DELETE", "/api/v1/namespaces/default/configmaps/body-opts",
                       {"propagationPolicy": "Orphan"})
    assert status == 200 and body["metadata"]["finalizers"] == ["orphan"]
    assert body["metadata"]["deletionTimestamp"]
    status, body = raw(server, "DELETE", "/api/v1/namespaces/default/configmaps/body-opts",
                       {"propagationPolicy": "Foreground"})
    assert body["metadata"]["finalizers"] == ["foregroundDeletion"]
    status, body = raw(server, "DELETE", "/api/v1/namespaces/default/configmaps/body-opts",
                       {"propagationPolicy": "Sideways"})
    assert status == 422 and "propagationPolicy: Unsupported value" in body["message"]
    status, body = raw(server, "DELETE", "/api/v1/namespaces/default/configmaps/body-opts",
                       {"dryRun": ["Some"]})
    assert status == 422 and "dryRun: Unsupported value" in body["message"]
    # removing the finalizer (what the collector does) completes the deletion
    v1.patch_namespaced_config_map("body-opts", "default", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as e:
        v1.read_namespaced_config_map("body-opts", "default")
    assert e.value.status == 404


def test_delete_options_in_the_query(server):
    v1 = api(server)
    v1.create_namespaced_config_map("default", cm("query-opts"))
    status, _ = raw(server, "DELETE", "/api/v1/namespaces/default/configmaps/query-opts?dryRun=All")
    assert status == 200 and v1.read_namespaced_config_map("query-opts", "default")
    status, body = raw(server, "DELETE",
                       "/api/v1/namespaces/default/configmaps/query-opts?propagationPolicy=Orphan")
    assert body["metadata"]["finalizers"] == ["orphan"]
    v1.patch_namespaced_config_map("query-opts", "default", {"metadata": {"finalizers": None}})
    status, body = raw(server, "DELETE", "/api/v1/namespaces/default/configmaps/x?propagationPolicy=No")
    assert status == 422


def test_grace_period_from_body_and_query_on_a_running_pod(server):
    v1 = api(server)
    for name in ("grace-body", "grace-query"):
        v1.create_namespaced_pod("default", client.V1Pod(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1PodSpec(node_name="n1", containers=[client.V1Container(name="c", image="i:1")])))
    status, body = raw(server, "DELETE", "/api/v1/namespaces/default/pods/grace-body",
                       {"gracePeriodSeconds": 7})
    assert body["metadata"]["deletionGracePeriodSeconds"] == 7
    status, body = raw(server, "DELETE", "/api/v1/namespaces/default/pods/grace-query?gracePeriodSeconds=-5")
    assert body["metadata"]["deletionGracePeriodSeconds"] == 1  # negative means 1, as upstream
    for name in ("grace-body", "grace-query"):  # the node agent's confirmation
        v1.delete_namespaced_pod(name, "default", grace_period_seconds=0)


def test_delete_collection_honours_dry_run_in_the_body(server):
    v1 = api(server)
    for i in range(2):
        v1.create_namespaced_config_map("default", cm(f"coll-{i}", {"coll": "x"}))
    v1.delete_collection_namespaced_config_map("default", label_selector="coll=x",
                                               body=client.V1DeleteOptions(dry_run=["All"]))
    assert len(v1.list_namespaced_config_map("default", label_selector="coll=x").items) == 2
    v1.delete_collection_namespaced_config_map("default", label_selector="coll=x")
    assert v1.list_namespaced_config_map("default", label_selector="coll=x").items == []


# ---- impersonation ----

def test_impersonation_is_refused_not_ignored(kubectl, server):
    p = kubectl.run("auth", "whoami", "--as", "jane", check=False)
    assert p.returncode == 1 and "kubernetes-admin" not in p.stdout  # kubectl's words for a 403
    p = kubectl.run("get", "pods", "--as", "jane", "--as-group", "devs", check=False)
    assert p.returncode == 1 and "Error from server (Forbidden)" in p.stderr
    assert 'users "jane" is forbidden' in p.stderr and "cannot impersonate" in p.stderr
    status, body = raw(server, "GET", "/api/v1/namespaces", headers={"Impersonate-Group": "devs"})
    assert status == 403 and body["details"]["kind"] == "groups"


# ---- Secret stringData ----

def test_secret_string_data_is_merged_into_data(kubectl):
    kubectl("apply", "-f", "-", input="""
apiVersion: v1
kind: Secret
metadata: {name: sd}
data: {a: b2xk, keep: eA==}
stringData: {a: new, b: two}
""")
    s = json.loads(kubectl("get", "secret", "sd", "-o", "json"))
    assert "stringData" not in s
    assert {k: base64.b64decode(v).decode() for k, v in s["data"].items()} == {"a": "new", "b": "two", "keep": "x"}
    kubectl("patch", "secret", "sd", "-p", '{"stringData": {"c": "3"}}')
    s = json.loads(kubectl("get", "secret", "sd", "-o", "json"))
    assert base64.b64decode(s["data"]["c"]) == b"3" and "stringData" not in s
    p = kubectl.run("create", "-f", "-", check=False, input="""
apiVersion: v1
kind: Secret
metadata: {name: bad64}
data: {a: "not base64!"}
""")
    assert p.returncode == 1 and "illegal base64 data" in p.stderr
    p = kubectl.run("create", "secret", "generic", "badkey", "--from-literal=a b=1", check=False)
    assert p.returncode == 1 and "a valid config key" in p.stderr


# ---- Services: nodePorts and clusterIPs ----

SVC = """
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  type: NodePort
  selector: {{app: x}}
  ports: [{{port: 80{node_port}}}]
"""


def test_node_port_range_and_uniqueness(kubectl):
    kubectl("apply", "-f", "-", input=SVC.format(name="np-a", node_port=", nodePort: 30555"))
    p = kubectl.run("apply", "-f", "-", input=SVC.format(name="np-b", node_port=", nodePort: 30555"), check=False)
    assert p.returncode == 1
    assert 'spec.ports[0].nodePort: Invalid value: 30555: provided port is already allocated' in p.stderr
    p = kubectl.run("apply", "-f", "-", input=SVC.format(name="np-c", node_port=", nodePort: 80"), check=False)
    assert p.returncode == 1
    assert ("spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. "
            "The range of valid ports is 30000-32767") in p.stderr
    kubectl("delete", "svc", "np-a")


def test_cluster_ips_and_node_ports_are_random_from_the_dynamic_band(kubectl):
    ips, ports = [], []
    for i in range(4):
        kubectl("apply", "-f", "-", input=SVC.format(name=f"rnd-{i}", node_port=""))
        svc = json.loads(kubectl("get", "svc", f"rnd-{i}", "-o", "json"))
        ips.append(ipaddress.ip_address(svc["spec"]["clusterIP"]))
        ports.append(svc["spec"]["ports"][0]["nodePort"])
    # The lower band (10.96.0.1-10.96.1.0; ports 30000-30085) is left to static requests.
    assert all(ip >= ipaddress.ip_address("10.96.1.1") for ip in ips)
    assert all(30086 <= p <= 32767 for p in ports)
    assert sorted(ips) != ips or sorted(ports) != ports or len(set(ips)) == 4
    # A freed address is not handed out again at once.
    kubectl("delete", "svc", "rnd-0")
    kubectl("apply", "-f", "-", input=SVC.format(name="rnd-again", node_port=""))
    again = json.loads(kubectl("get", "svc", "rnd-again", "-o", "json"))
    assert ipaddress.ip_address(again["spec"]["clusterIP"]) != ips[0]
    # A type change to NodePort allocates a port; back to ClusterIP with the port left is refused.
    kubectl("create", "service", "clusterip", "retype", "--tcp=80:80")
    kubectl("patch", "svc", "retype", "-p", '{"spec": {"type": "NodePort"}}')
    svc = json.loads(kubectl("get", "svc", "retype", "-o", "json"))
    assert 30000 <= svc["spec"]["ports"][0]["nodePort"] <= 32767
    p = kubectl.run("patch", "svc", "retype", "-p", '{"spec": {"type": "ClusterIP"}}', check=False)
    assert p.returncode == 1 and "spec.ports[0].nodePort: Forbidden" in p.stderr
    kubectl("delete", "svc", "rnd-1", "rnd-2", "rnd-3", "rnd-again", "retype")


# ---- Deployment generation, strategic merge order ----

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
{containers}
"""


def containers(*names):
    return "\n".join(f"      - {{name: {n}, image: busybox:1.36}}" for n in names)


def test_deployment_generation_moves_on_annotation_change(kubectl):
    kubectl("apply", "-f", "-", input=DEPLOY.format(name="gen", containers=containers("main")))
    gen = lambda: json.loads(kubectl("get", "deploy", "gen", "-o", "json"))["metadata"]["generation"]
    assert gen() == 1
    kubectl("annotate", "deploy", "gen", "note=hello")
    assert gen() == 2
    kubectl("label", "deploy", "gen", "tier=web")  # labels are not copied to ReplicaSets
    assert gen() == 2
    kubectl("delete", "deploy", "gen")


def test_strategic_merge_puts_new_items_first_and_apply_keeps_manifest_order(kubectl):
    kubectl("apply", "-f", "-", input=DEPLOY.format(name="order", containers=containers("a", "b")))
    kubectl("patch", "deploy", "order", "-p",
            '{"spec":{"template":{"spec":{"containers":[{"name":"n","image":"busybox:1.36"}]}}}}')
    names = lambda: kubectl("get", "deploy", "order", "-o",
                            "jsonpath={.spec.template.spec.containers[*].name}").split()
    assert names() == ["n", "a", "b"]
    # kubectl apply sends $setElementOrder: the manifest's order wins for the items it names;
    # `n` (not from apply) keeps its place ahead of the item it stood before.
    kubectl("apply", "-f", "-", input=DEPLOY.format(name="order", containers=containers("b", "c", "a")))
    assert names() == ["n", "b", "c", "a"]
    kubectl("delete", "deploy", "order")


# ---- selectors, empty maps, 404 details ----

def test_unknown_field_selector_is_named_as_upstream(kubectl):
    p = kubectl.run("get", "pods", "--field-selector", "spec.foo=1", check=False)
    assert p.returncode == 1 and "field label not supported: spec.foo" in p.stderr
    p = kubectl.run("get", "configmaps", "--field-selector", "spec.foo=1", check=False)
    assert p.returncode == 1 and '"spec.foo" is not a known field selector' in p.stderr


def test_empty_labels_and_annotations_are_omitted(kubectl):
    kubectl("apply", "-f", "-", input="""
apiVersion: v1
kind: ConfigMap
metadata: {name: empties, labels: {}, annotations: {}}
data: {}
""")
    obj = json.loads(kubectl("get", "configmap", "empties", "-o", "json"))
    assert "labels" not in obj["metadata"] and "data" not in obj
    # kubectl apply's own annotation is there; nothing else was kept empty
    assert set(obj["metadata"].get("annotations", {})) <= {"kubectl.kubernetes.io/last-applied-configuration"}
    kubectl("create", "-f", "-", input="""
apiVersion: v1
kind: ConfigMap
metadata: {name: empties2, labels: {}, annotations: {}}
""")
    obj = json.loads(kubectl("get", "configmap", "empties2", "-o", "json"))
    assert "labels" not in obj["metadata"] and "annotations" not in obj["metadata"]
    kubectl("delete", "configmap", "empties", "empties2")


def test_not_found_status_carries_details(server, kubectl):
    status, body = raw(server, "GET", "/api/v1/namespaces/default/pods/nope/frobnicate")
    assert status == 404 and body["details"] == {}
    status, body = raw(server, "GET", "/apis/apps/v1/namespaces/default/deployments/nope")
    assert body["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}
    status, body = raw(server, "GET", "/apis/nope.example.com/v1/things")
    assert status == 404 and body["details"] == {}


def test_kubectl_debug_adds_an_ephemeral_container(kubectl):
    """pods/<p>/ephemeralcontainers: kubectl debug's PATCH adds a container; the list only grows."""
    kubectl("run", "dbg", "--image=busybox:1.36", "--restart=Never")
    p = kubectl.run("debug", "dbg", "--image=busybox:1.36", "--attach=false", check=False)
    assert p.returncode == 0, p.stderr
    pod = json.loads(kubectl("get", "pod", "dbg", "-o", "json"))
    eph = pod["spec"]["ephemeralContainers"]
    assert len(eph) == 1 and eph[0]["image"] == "busybox:1.36" and eph[0]["name"].startswith("debugger-")
    assert eph[0]["terminationMessagePolicy"] == "File"  # defaulted like any container
    # The pod itself cannot drop it: writes to the pod keep the ephemeral containers.
    kubectl("patch", "pod", "dbg", "--type=json", "-p", '[{"op":"remove","path":"/spec/ephemeralContainers"}]')
    assert len(json.loads(kubectl("get", "pod", "dbg", "-o", "json"))["spec"]["ephemeralContainers"]) == 1
    p = kubectl.run("debug", "dbg", "--image=busybox:1.36", "--attach=false", "--container=c2",
                    "--target=nope", check=False)
    assert p.returncode != 0 and "targetContainerName: Not found" in p.stderr
    kubectl("delete", "pod", "dbg")
