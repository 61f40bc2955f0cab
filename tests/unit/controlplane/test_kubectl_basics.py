"""The real kubectl 1.37 against our server: discovery, CRUD, selectors, output formats."""

import json

import yaml

POD = """
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: {app}}}
spec:
  containers:
  - name: main
    image: {image}
    ports: [{{containerPort: 80}}]
"""


def test_version_has_no_skew_warning(kubectl):
    p = kubectl.run("version")
    assert "Server Version: v1.37" in p.stdout
    assert "WARNING" not in p.stderr and "skew" not in p.stderr


def test_api_resources_lists_our_kinds(kubectl):
    out = kubectl("api-resources")
    for line in ("pods", "po", "deployments", "deploy", "apps/v1", "leases", "coordination.k8s.io/v1",
                 "endpointslices", "discovery.k8s.io/v1", "nodes", "no"):
        assert line in out
    namespaced = kubectl("api-resources", "--namespaced=false", "-o", "name").split()
    assert "nodes" in namespaced and "namespaces" in namespaced and "pods" not in namespaced


def test_default_namespaces_and_kubernetes_service(kubectl):
    ns = kubectl("get", "ns", "-o", "jsonpath={.items[*].metadata.name}").split()
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= set(ns)
    out = kubectl("get", "svc", "kubernetes", "-n", "default")
    assert "10.96.0.1" in out and "443/TCP" in out


def test_create_get_delete_pod_with_defaults(kubectl):
    out = kubectl("create", "-f", "-", input=POD.format(name="crud", app="crud", image="busybox"))
    assert "pod/crud created" in out
    pod = json.loads(kubectl("get", "pod", "crud", "-o", "json"))
    md, spec = pod["metadata"], pod["spec"]
    assert md["uid"] and md["creationTimestamp"] and int(md["resourceVersion"]) > 0
    assert spec["restartPolicy"] == "Always" and spec["terminationGracePeriodSeconds"] == 30
    assert spec["containers"][0]["imagePullPolicy"] == "Always"  # untagged image
    assert spec["containers"][0]["ports"][0]["protocol"] == "TCP"
    assert spec["dnsPolicy"] == "ClusterFirst" and spec["schedulerName"] == "default-scheduler"
    assert pod["status"]["phase"] == "Pending"
    p = kubectl.run("create", "-f", "-", input=POD.format(name="crud", app="crud", image="busybox"),
                    check=False)
    assert p.returncode != 0 and "AlreadyExists" in p.stderr
    assert 'pod "crud" deleted' in kubectl("delete", "pod", "crud")
    p = kubectl.run("get", "pod", "crud", check=False)
    assert p.returncode == 1 and 'pods "crud" not found' in p.stderr


def test_get_output_formats_and_selectors(kubectl):
    kubectl("apply", "-f", "-", input=POD.format(name="web-1", app="web", image="nginx:1.25"))
    kubectl("apply", "-f", "-", input=POD.format(name="db-1", app="db", image="postgres:16"))
    wide = kubectl("get", "pods", "-o", "wide")
    header = wide.splitlines()[0].split()
    assert header[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert "NOMINATED" in header and "GATES" in header and "NODE" in header and "IP" in header
    assert "web-1" in wide and "0/1" in wide and "Pending" in wide
    all_ns = kubectl("get", "pods", "-A")
    assert all_ns.splitlines()[0].split()[0] == "NAMESPACE" and "default" in all_ns
    labels = kubectl("get", "pods", "--show-labels")
    assert "LABELS" in labels and "app=web" in labels
    assert kubectl("get", "pods", "-l", "app=web", "-o", "name").split() == ["pod/web-1"]
    assert kubectl("get", "pods", "-l", "app in (web,db),app!=db", "-o", "name").split() == ["pod/web-1"]
    assert kubectl("get", "pods", "--field-selector", "metadata.name=db-1", "-o", "name").split() == ["pod/db-1"]
    p = kubectl.run("get", "pods", "--field-selector", "spec.bogus=1", check=False)
    assert p.returncode != 0 and "spec.bogus" in p.stderr
    doc = yaml.safe_load(kubectl("get", "pod", "web-1", "-o", "yaml"))
    assert doc["kind"] == "Pod" and doc["spec"]["containers"][0]["image"] == "nginx:1.25"
    assert kubectl("get", "pod", "web-1", "-o", "jsonpath={.spec.containers[0].imagePullPolicy}") == "IfNotPresent"
    kubectl("delete", "pods", "web-1", "db-1")


def test_paging_with_limit_and_continue(kubectl):
    docs = "\n---\n".join(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: page-{i}}}\n"
                          f"data: {{k: v}}" for i in range(7))
    kubectl("create", "-f", "-", input=docs)
    names = kubectl("get", "configmaps", "--chunk-size=2", "-o", "name").split()
    assert [n for n in names if n.startswith("configmap/page-")] == [f"configmap/page-{i}" for i in range(7)]
    kubectl("delete", "configmaps", *[f"page-{i}" for i in range(7)])


def test_unauthenticated_requests_get_401(server):
    import urllib.error
    import urllib.request
    try:
        urllib.request.urlopen(f"{server.url}/api/v1/pods", context=server.ssl_context())
        raise AssertionError("expected 401")
    except urllib.error.HTTPError as e:
        assert e.code == 401
        assert json.loads(e.read())["reason"] == "Unauthorized"


def test_typed_client_commands_send_protobuf_and_work(kubectl):
    # `kubectl create deployment/configmap/secret/service` encode their bodies as protobuf.
    assert "deployment.apps/web created" in kubectl("create", "deployment", "web", "--image=nginx:1.25",
                                                    "--replicas=3")
    d = json.loads(kubectl("get", "deploy", "web", "-o", "json"))
    assert d["spec"]["replicas"] == 3 and d["metadata"]["generation"] == 1
    assert d["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}
    assert "paused" not in d["spec"]  # Go's omitempty zeros do not leak out of protobuf
    assert "scaled" in kubectl("scale", "deploy", "web", "--replicas=0")
    d = json.loads(kubectl("get", "deploy", "web", "-o", "json"))
    assert d["spec"]["replicas"] == 0 and d["metadata"]["generation"] == 2
    wide = kubectl("get", "deploy", "-o", "wide")
    assert wide.splitlines()[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE",
                                            "CONTAINERS", "IMAGES", "SELECTOR"]
    assert "0/0" in wide and "app=web" in wide
    kubectl("create", "configmap", "cfg", "--from-literal=a=b")
    kubectl("create", "secret", "generic", "sec", "--from-literal=p=q")
    assert json.loads(kubectl("get", "secret", "sec", "-o", "json"))["data"] == {"p": "cQ=="}
    kubectl("create", "service", "clusterip", "websvc", "--tcp=80:8080")
    svc = json.loads(kubectl("get", "svc", "websvc", "-o", "json"))
    assert svc["spec"]["clusterIP"].startswith("10.") and svc["spec"]["ports"][0]["targetPort"] == 8080
    kubectl("delete", "deploy/web", "cm/cfg", "secret/sec", "svc/websvc")


NODE = {
    "apiVersion": "v1", "kind": "Node",
    "metadata": {"name": "node-a", "labels": {"kubernetes.io/hostname": "node-a",
                                              "node-role.kubernetes.io/control-plane": ""}},
    "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
               "addresses": [{"type": "InternalIP", "address": "192.0.2.10"}],
               "nodeInfo": {"kubeletVersion": "v1.37.0", "osImage": "Debian GNU/Linux 12",
                            "kernelVersion": "6.1.0", "containerRuntimeVersion": "nodeagent://0.1",
                            "architecture": "amd64", "operatingSystem": "linux", "machineID": "",
                            "systemUUID": "", "bootID": "", "kubeProxyVersion": ""}}}


def test_nodes_and_pods_wide(kubectl):
    kubectl("create", "-f", "-", input=json.dumps(NODE))
    out = kubectl("get", "nodes,pods", "-o", "wide", "-A")
    lines = out.splitlines()
    assert lines[0].split()[:6] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP"]
    row = lines[1].split()
    assert row[0] == "node/node-a" and row[1:3] == ["Ready", "control-plane"] and row[4] == "v1.37.0"
    assert "192.0.2.10" in lines[1] and "Debian GNU/Linux 12" in lines[1]
    kubectl("cordon", "node-a")
    assert "Ready,SchedulingDisabled" in kubectl("get", "node", "node-a")
    kubectl("delete", "node", "node-a")


def test_auth_can_i_and_whoami(kubectl):
    assert kubectl("auth", "can-i", "create", "pods").strip() == "yes"
    assert "system:masters" in kubectl("auth", "whoami")


def test_drain_evicts_pods_from_a_node(kubectl, server):
    import urllib.request
    node = json.loads(json.dumps(NODE))
    node["metadata"]["name"] = "node-d"
    kubectl("create", "-f", "-", input=json.dumps(node))
    kubectl("apply", "-f", "-", input=POD.format(name="on-d", app="d", image="busybox"))
    req = urllib.request.Request(
        f"{server.url}/api/v1/namespaces/default/pods/on-d/binding", method="POST",
        data=json.dumps({"metadata": {"name": "on-d"}, "target": {"kind": "Node", "name": "node-d"}}).encode(),
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"})
    urllib.request.urlopen(req, context=server.ssl_context())
    # drain discovers pods/eviction and evicts through it (a protobuf policy/v1 Eviction).
    out = kubectl.run("drain", "node-d", "--force", "--grace-period=0", "--timeout=20s")
    assert "evicting pod default/on-d" in out.stderr + out.stdout and "node/node-d drained" in out.stdout
    assert kubectl.run("get", "pod", "on-d", check=False).returncode == 1
    kubectl("delete", "node", "node-d")


def test_health_endpoints_verbose_and_per_check(kubectl):
    """kube-apiserver's /livez, /readyz, /healthz: "ok", or with ?verbose one line per check and
    "<kind> check passed"; each check has its own path; an unknown one is a 404."""
    assert kubectl("get", "--raw", "/readyz") == "ok"
    for kind in ("livez", "readyz", "healthz"):
        lines = kubectl("get", "--raw", f"/{kind}?verbose").splitlines()
        assert lines[0] == "[+]ping ok" and "[+]etcd ok" in lines
        assert lines[-1] == f"{kind} check passed"
    assert kubectl("get", "--raw", "/livez/etcd") == "ok"
    assert kubectl("get", "--raw", "/readyz/ping") == "ok"
    assert "[+]etcd excluded: ok" in kubectl("get", "--raw", "/readyz?verbose&exclude=etcd")
    p = kubectl.run("get", "--raw", "/readyz/nosuchcheck", check=False)
    assert p.returncode != 0 and "NotFound" in p.stderr
