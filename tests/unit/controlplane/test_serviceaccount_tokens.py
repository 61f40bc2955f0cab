"""Service-account tokens (TokenRequest), their authentication and the ServiceAccount admission,
driven by the real kubectl and the kubernetes Python client (controlplane/apiserver/serviceaccounts.py)."""

import base64
import json
import subprocess
import time
import uuid

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from controlplane.apiserver.serviceaccounts import SigningKey

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture(scope="module")
def ns(kubectl):
    # the bare test server runs no serviceaccount controller: we make the accounts ourselves
    kubectl("create", "namespace", "tok")
    kubectl("create", "serviceaccount", "default", "-n", "tok")
    return "tok"


def claims(token):
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def whoami(kubectl, token):
    return kubectl.run("auth", "whoami", "-o", "json", f"--token={token}", check=False)


def pod(name, **spec):
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                       "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}})


def test_create_token_authenticates_as_the_account(kubectl, ns):
    token = kubectl("create", "token", "default", "-n", ns).strip()
    c = claims(token)
    assert c["sub"] == "system:serviceaccount:tok:default"
    assert c["aud"] == ["https://kubernetes.default.svc.cluster.local"]
    assert c["exp"] - c["iat"] == 3600                     # the default expirationSeconds
    p = whoami(kubectl, token)
    assert p.returncode == 0, p.stderr
    user = json.loads(p.stdout)["status"]["userInfo"]
    assert user["username"] == "system:serviceaccount:tok:default"
    assert user["groups"] == ["system:serviceaccounts", "system:serviceaccounts:tok",
                              "system:authenticated"]

def test_an_unbound_account_may_only_discover_and_ask(kubectl, ns):
    """What a kubeadm cluster's bootstrap RBAC lets an account with no bindings do: discovery,
    OpenAPI, whoami and can-i — every other request is 403 with upstream's message. A pod's
    token must not carry the admin's rights."""
    token = kubectl("create", "token", "default", "-n", ns).strip()
    as_sa = [f"--token={token}"]
    p = kubectl.run("get", "pods", "-n", ns, *as_sa, check=False)
    assert p.returncode == 1
    assert ('pods is forbidden: User "system:serviceaccount:tok:default" cannot list resource '
            '"pods" in API group "" in the namespace "tok"') in p.stderr
    p = kubectl.run("get", "ns", "tok", *as_sa, check=False)
    assert ('namespaces "tok" is forbidden: User "system:serviceaccount:tok:default" cannot get '
            'resource "namespaces" in API group "" in the namespace "tok"') in p.stderr
    p = kubectl.run("get", "nodes", *as_sa, check=False)
    assert 'cannot list resource "nodes" in API group "" at the cluster scope' in p.stderr
    p = kubectl.run("create", "deployment", "x", "--image=busybox", "-n", ns, *as_sa, check=False)
    assert p.returncode == 1 and 'cannot create resource "deployments" in API group "apps"' in p.stderr
    assert kubectl("get", "deploy", "-n", ns, "-o", "name").strip() == ""  # nothing was created
    # discovery and the schema: kubectl api-resources / explain work with the token
    assert "pods" in kubectl("api-resources", "--api-group=", *as_sa)
    # can-i answers as the requests themselves are answered
    p = kubectl.run("auth", "can-i", "list", "pods", "-n", ns, *as_sa, check=False)
    assert p.returncode == 1 and p.stdout.strip() == "no"
    p = kubectl.run("auth", "can-i", "create", "selfsubjectreviews.authentication.k8s.io", *as_sa,
                    check=False)
    assert p.returncode == 0 and p.stdout.strip() == "yes"
    assert kubectl("auth", "can-i", "list", "pods", "-n", ns).strip() == "yes"  # the admin


def test_bad_requests(kubectl, ns):
    p = kubectl.run("create", "token", "default", "-n", ns, "--duration=5m", check=False)
    assert ("spec.expirationSeconds: Invalid value: 300: may not specify a duration less than "
            "10 minutes") in p.stderr
    p = kubectl.run("create", "token", "nobody", "-n", ns, check=False)
    assert 'serviceaccounts "nobody" not found' in p.stderr


def test_refused_tokens(kubectl, ns, server):
    key = SigningKey.load(server.data_dir / "pki" / "sa.key")
    good = claims(kubectl("create", "token", "default", "-n", ns).strip())
    now = int(time.time())
    expired = key.sign({**good, "iat": now - 4000, "nbf": now - 4000, "exp": now - 400})
    other_aud = key.sign({**good, "aud": ["vault"]})
    forged = kubectl("create", "token", "default", "-n", ns).strip()
    head, body, sig = forged.split(".")
    forged = ".".join([head, base64.urlsafe_b64encode(json.dumps(
        {**claims(forged), "sub": "system:serviceaccount:kube-system:x"}).encode()).decode().rstrip("="), sig])
    for token in (expired, other_aud, forged, "not-a-jwt"):
        p = whoami(kubectl, token)
        assert p.returncode == 1 and "Unauthorized" in p.stderr
    # a token's account, deleted and re-created, is another account (its uid differs)
    kubectl("create", "serviceaccount", "short", "-n", ns)
    token = kubectl("create", "token", "short", "-n", ns).strip()
    assert whoami(kubectl, token).returncode == 0
    kubectl("delete", "serviceaccount", "short", "-n", ns)
    kubectl("create", "serviceaccount", "short", "-n", ns)
    assert "Unauthorized" in whoami(kubectl, token).stderr


def test_token_bound_to_a_pod_dies_with_it(kubectl, ns):
    kubectl("create", "-n", ns, "-f", "-", input=pod("bound"))
    uid = kubectl("get", "pod", "bound", "-n", ns, "-o", "jsonpath={.metadata.uid}")
    p = kubectl.run("create", "token", "default", "-n", ns, "--bound-object-kind=Pod",
                    "--bound-object-name=bound", f"--bound-object-uid={uuid.uuid4()}", check=False)
    assert "does not match the UID in record" in p.stderr
    token = kubectl("create", "token", "default", "-n", ns, "--bound-object-kind=Pod",
                    "--bound-object-name=bound", f"--bound-object-uid={uid}").strip()
    assert claims(token)["kubernetes.io"]["pod"] == {"name": "bound", "uid": uid}
    extra = json.loads(whoami(kubectl, token).stdout)["status"]["userInfo"]["extra"]
    assert extra["authentication.kubernetes.io/pod-name"] == ["bound"]
    kubectl("delete", "pod", "bound", "-n", ns, "--grace-period=0", "--force")
    assert "Unauthorized" in whoami(kubectl, token).stderr
    kubectl("create", "-n", ns, "-f", "-", input=pod("bound"))   # same name, another pod
    assert "Unauthorized" in whoami(kubectl, token).stderr


def test_admission_mounts_kube_api_access(kubectl, ns):
    kubectl("create", "-n", ns, "-f", "-", input=pod(
        "auto", initContainers=[{"name": "i", "image": "busybox"}],
        containers=[{"name": "a", "image": "busybox"},
                    {"name": "b", "image": "busybox",
                     "volumeMounts": [{"name": "own", "mountPath": SA_DIR}]}],
        volumes=[{"name": "own", "emptyDir": {}}]))
    spec = json.loads(kubectl("get", "pod", "auto", "-n", ns, "-o", "json"))["spec"]
    assert spec["serviceAccountName"] == "default" and spec["serviceAccount"] == "default"
    vol = spec["volumes"][-1]
    assert vol["name"].startswith("kube-api-access-") and len(vol["name"]) == len("kube-api-access-") + 5
    assert vol["projected"] == {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
            "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}
    mount = {"name": vol["name"], "readOnly": True, "mountPath": SA_DIR}
    assert spec["initContainers"][0]["volumeMounts"] == [mount]
    assert spec["containers"][0]["volumeMounts"] == [mount]
    assert spec["containers"][1]["volumeMounts"] == [{"name": "own", "mountPath": SA_DIR}]


def test_automount_false_on_pod_or_account(kubectl, ns):
    kubectl("create", "-n", ns, "-f", "-", input=pod("off", automountServiceAccountToken=False))
    kubectl("create", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "quiet"},
        "automountServiceAccountToken": False}))
    kubectl("create", "-n", ns, "-f", "-", input=pod("quiet", serviceAccountName="quiet"))
    kubectl("create", "-n", ns, "-f", "-", input=pod("loud", serviceAccountName="quiet",
                                                     automountServiceAccountToken=True))
    vols = {n: kubectl("get", "pod", n, "-n", ns, "-o", "jsonpath={.spec.volumes[*].name}")
            for n in ("off", "quiet", "loud")}
    assert vols["off"] == "" and vols["quiet"] == "" and vols["loud"].startswith("kube-api-access-")


def test_python_client_token_for_a_pods_volume(server, ns, kubectl):
    """What a node agent does for a kube-api-access volume: 3607 s bound to the pod, which the
    server extends to a year (the status still says 3607 s) so old clients keep working."""
    api = config.new_client_from_config(config_file=str(server.kubeconfig))
    v1 = client.CoreV1Api(api)
    p = v1.create_namespaced_pod(ns, client.V1Pod(
        metadata=client.V1ObjectMeta(name="py"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")])))
    req = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
        audiences=[], expiration_seconds=3607, bound_object_ref=client.V1BoundObjectReference(
            kind="Pod", api_version="v1", name="py", uid=p.metadata.uid)))
    before = time.time()
    out = v1.create_namespaced_service_account_token("default", ns, req)
    c = claims(out.status.token)
    assert c["exp"] - c["iat"] == 365 * 24 * 3600 and c["kubernetes.io"]["warnafter"] == c["iat"] + 3607
    assert abs(out.status.expiration_timestamp.timestamp() - (before + 3607)) < 5
    cfg = client.Configuration()
    cfg.host, cfg.ssl_ca_cert = server.url, str(server.data_dir / "pki" / "ca.crt")
    cfg.api_key = {"authorization": "Bearer " + out.status.token}
    review = client.AuthenticationV1Api(client.ApiClient(cfg)).create_self_subject_review(
        client.V1SelfSubjectReview())
    assert review.status.user_info.username == "system:serviceaccount:tok:default"
    # a pod's token is only for the account the pod runs as
    v1.create_namespaced_service_account(ns, client.V1ServiceAccount(
        metadata=client.V1ObjectMeta(name="other")))
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_service_account_token("other", ns, req)
    assert e.value.status == 400 and "different serviceaccount name" in json.loads(e.value.body)["message"]


def test_signature_is_standard_rs256(kubectl, ns, server, tmp_path):
    """openssl, not our own code, checks the signature against the key's public half."""
    head, body, sig = kubectl("create", "token", "default", "-n", ns).strip().split(".")
    assert json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["alg"] == "RS256"
    (tmp_path / "msg").write_text(f"{head}.{body}")
    (tmp_path / "sig").write_bytes(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    pub = subprocess.run(["openssl", "rsa", "-in", str(server.data_dir / "pki" / "sa.key"), "-pubout",
                          "-out", str(tmp_path / "pub.pem")], capture_output=True)
    assert pub.returncode == 0, pub.stderr
    p = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "pub.pem"),
                        "-signature", str(tmp_path / "sig"), str(tmp_path / "msg")],
                       capture_output=True, text=True)
    assert p.stdout.strip() == "Verified OK", p.stderr
    (tmp_path / "msg").write_text(f"{head}.{body}x")
    p = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "pub.pem"),
                        "-signature", str(tmp_path / "sig"), str(tmp_path / "msg")],
                       capture_output=True, text=True)
    assert "Verification failure" in p.stdout


def node(name):
    return json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})


def test_a_pods_token_names_its_node(kubectl, ns, server):
    """Since 1.32 (ServiceAccountTokenPodNodeInfo) a token bound to a scheduled pod carries the
    node's name and uid; the user gets them as extra. The claim is not checked later: the node
    may go and the token still works while the pod lives."""
    kubectl("create", "-f", "-", input=node("tok-n1"))
    node_uid = kubectl("get", "node", "tok-n1", "-o", "jsonpath={.metadata.uid}")
    kubectl("create", "-n", ns, "-f", "-", input=pod("placed", nodeName="tok-n1"))
    pod_uid = kubectl("get", "pod", "placed", "-n", ns, "-o", "jsonpath={.metadata.uid}")
    token = kubectl("create", "token", "default", "-n", ns, "--bound-object-kind=Pod",
                    "--bound-object-name=placed").strip()
    assert claims(token)["kubernetes.io"] == {
        "namespace": ns, "serviceaccount": claims(token)["kubernetes.io"]["serviceaccount"],
        "pod": {"name": "placed", "uid": pod_uid}, "node": {"name": "tok-n1", "uid": node_uid}}
    extra = json.loads(whoami(kubectl, token).stdout)["status"]["userInfo"]["extra"]
    assert extra["authentication.kubernetes.io/node-name"] == ["tok-n1"]
    assert extra["authentication.kubernetes.io/node-uid"] == [node_uid]
    kubectl("delete", "node", "tok-n1")
    assert whoami(kubectl, token).returncode == 0
    # a pod assigned to a Node that does not exist: the name alone, no uid (upstream's claim)
    token = kubectl("create", "token", "default", "-n", ns, "--bound-object-kind=Pod",
                    "--bound-object-name=placed").strip()
    assert claims(token)["kubernetes.io"]["node"] == {"name": "tok-n1"}
    extra = json.loads(whoami(kubectl, token).stdout)["status"]["userInfo"]["extra"]
    assert extra["authentication.kubernetes.io/node-name"] == ["tok-n1"]
    assert "authentication.kubernetes.io/node-uid" not in extra
    # an unscheduled pod's token has no node claim
    kubectl("create", "-n", ns, "-f", "-", input=pod("floating"))
    token = kubectl("create", "token", "default", "-n", ns, "--bound-object-kind=Pod",
                    "--bound-object-name=floating").strip()
    assert "node" not in claims(token)["kubernetes.io"]


def test_token_bound_to_a_node_dies_with_it(kubectl, ns):
    """1.33 (ServiceAccountTokenNodeBinding): `kubectl create token --bound-object-kind Node`; the
    token is refused once the Node is deleted, and stays refused for a new Node of that name."""
    kubectl("create", "-f", "-", input=node("tok-n2"))
    uid = kubectl("get", "node", "tok-n2", "-o", "jsonpath={.metadata.uid}")
    p = kubectl.run("create", "token", "default", "-n", ns, "--bound-object-kind=Node",
                    "--bound-object-name=tok-n2", f"--bound-object-uid={uuid.uuid4()}", check=False)
    assert p.returncode == 1 and "does not match the UID in record" in p.stderr
    p = kubectl.run("create", "token", "default", "-n", ns, "--bound-object-kind=Node",
                    "--bound-object-name=nowhere", check=False)
    assert 'nodes "nowhere" not found' in p.stderr
    token = kubectl("create", "token", "default", "-n", ns, "--bound-object-kind=Node",
                    "--bound-object-name=tok-n2", f"--bound-object-uid={uid}").strip()
    private = claims(token)["kubernetes.io"]
    assert private["node"] == {"name": "tok-n2", "uid": uid} and "pod" not in private
    assert "warnafter" not in private
    user = json.loads(whoami(kubectl, token).stdout)["status"]["userInfo"]
    assert user["username"] == "system:serviceaccount:tok:default"
    assert user["extra"]["authentication.kubernetes.io/node-name"] == ["tok-n2"]
    assert user["extra"]["authentication.kubernetes.io/node-uid"] == [uid]
    kubectl("delete", "node", "tok-n2")
    assert "Unauthorized" in whoami(kubectl, token).stderr
    kubectl("create", "-f", "-", input=node("tok-n2"))          # same name, another Node
    assert "Unauthorized" in whoami(kubectl, token).stderr


def test_python_client_binds_to_a_node_and_not_to_other_kinds(server, ns, kubectl):
    api = config.new_client_from_config(config_file=str(server.kubeconfig))
    v1 = client.CoreV1Api(api)
    n = v1.create_node(client.V1Node(metadata=client.V1ObjectMeta(name="tok-n3")))

    def request(kind, name, api_version="v1", uid=None):
        return client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
            audiences=[], bound_object_ref=client.V1BoundObjectReference(
                kind=kind, api_version=api_version, name=name, uid=uid)))

    out = v1.create_namespaced_service_account_token("default", ns, request("Node", "tok-n3"))
    assert out.spec.bound_object_ref.uid == n.metadata.uid
    assert claims(out.status.token)["kubernetes.io"]["node"] == {"name": "tok-n3", "uid": n.metadata.uid}
    for kind, version, text in (("ConfigMap", "v1", "cannot bind token to object of type /v1, Kind=ConfigMap"),
                                ("Deployment", "apps/v1",
                                 "cannot bind token to object of type apps/v1, Kind=Deployment")):
        with pytest.raises(ApiException) as e:
            v1.create_namespaced_service_account_token("default", ns, request(kind, "x", version))
        assert e.value.status == 400 and json.loads(e.value.body)["message"] == text
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_service_account_token("default", ns, request("Node", "tok-n3", uid="0"))
    assert e.value.status == 409 and json.loads(e.value.body)["message"].startswith(
        'Operation cannot be fulfilled on Node "tok-n3": the UID in the bound object reference (0)')
