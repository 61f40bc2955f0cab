"""Namespaces with the controllers: a `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap
in every namespace; `kubectl delete ns` empties the namespace and returns once it is gone; content
held by a finalizer keeps it Terminating, with upstream's conditions saying why."""

import json

import pytest

from tests.unit.controlplane.controllers.conftest import get_json, wait_until


@pytest.fixture(scope="module", autouse=True)
def controllers(start_controllers):
    return start_controllers("--controllers=*,-nodelifecycle,-nodeipam,-podgc")


def test_default_serviceaccount_and_root_ca(kubectl, server):
    kubectl("create", "namespace", "fresh")
    sa = wait_until(lambda: kubectl.run("get", "sa", "default", "-n", "fresh", check=False).returncode == 0,
                    what="default ServiceAccount")
    assert sa
    cm = wait_until(lambda: kubectl.run("get", "cm", "kube-root-ca.crt", "-n", "fresh", "-o", "json",
                                        check=False).stdout, what="kube-root-ca.crt")
    ca = json.loads(cm)["data"]["ca.crt"]
    assert ca == (server.data_dir / "pki" / "ca.crt").read_text()  # the CA that signed the server
    for ns in ("default", "kube-system"):
        wait_until(lambda: kubectl.run("get", "sa", "default", "-n", ns, check=False).returncode == 0,
                   what=f"default ServiceAccount in {ns}")
    kubectl("delete", "sa", "default", "-n", "fresh")  # put back
    wait_until(lambda: kubectl.run("get", "sa", "default", "-n", "fresh", check=False).returncode == 0,
               what="default ServiceAccount re-created")
    kubectl("patch", "cm", "kube-root-ca.crt", "-n", "fresh", "--type=merge", "-p", '{"data":{"ca.crt":"x"}}')
    wait_until(lambda: get_json(kubectl, "get", "cm", "kube-root-ca.crt", "-n", "fresh")["data"]["ca.crt"] == ca,
               what="kube-root-ca.crt restored")


def test_delete_namespace_removes_everything(kubectl):
    kubectl("create", "namespace", "gone")
    kubectl("create", "deployment", "web", "--image=busybox", "--replicas=2", "-n", "gone")
    kubectl("create", "configmap", "x", "-n", "gone", "--from-literal=a=b")
    kubectl("create", "service", "clusterip", "svc", "--tcp=80:80", "-n", "gone")
    kubectl("run", "solo", "--image=busybox", "-n", "gone")
    wait_until(lambda: len(get_json(kubectl, "get", "pods", "-n", "gone")["items"]) == 3, what="3 pods")
    kubectl("delete", "namespace", "gone", "--timeout=60s")  # returns when it is gone
    assert kubectl.run("get", "ns", "gone", check=False).returncode == 1
    for kind in ("pods", "deployments", "replicasets", "configmaps", "services", "serviceaccounts",
                 "endpointslices"):
        assert get_json(kubectl, "get", kind, "-n", "gone")["items"] == [], kind
    # the name can be used again at once, and is populated again
    kubectl("create", "namespace", "gone")
    wait_until(lambda: kubectl.run("get", "sa", "default", "-n", "gone", check=False).returncode == 0,
               what="default ServiceAccount in the new namespace")


def test_finalizer_holds_namespace_until_removed(kubectl):
    kubectl("create", "namespace", "held")
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "keep", "namespace": "held", "finalizers": ["example.com/hold"]}}))
    kubectl("delete", "namespace", "held", "--wait=false")

    def conditions():
        ns = get_json(kubectl, "get", "ns", "held")
        return {c["type"]: c for c in ns["status"].get("conditions") or []}
    conds = wait_until(lambda: (c := conditions()).get("NamespaceFinalizersRemaining", {}).get("status") == "True"
                       and c, what="NamespaceFinalizersRemaining")
    assert conds["NamespaceFinalizersRemaining"]["message"] == \
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
    assert conds["NamespaceContentRemaining"]["message"] == \
        "Some resources are remaining: configmaps has 1 resource instances"
    assert get_json(kubectl, "get", "ns", "held")["status"]["phase"] == "Terminating"
    kubectl("patch", "cm", "keep", "-n", "held", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    kubectl("wait", "--for=delete", "namespace/held", "--timeout=30s")
