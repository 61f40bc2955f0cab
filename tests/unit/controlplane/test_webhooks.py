"""Admission webhooks configured through admissionregistration.k8s.io are called: a real HTTPS
webhook server (its own CA, on loopback) mutates and denies writes made with the real kubectl;
failurePolicy decides what an unreachable webhook means."""

import base64
import json
import socket
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

SEEN: list[dict] = []


class Hook(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        req = review["request"]
        SEEN.append(req)
        obj = req.get("object") or {}
        resp = {"uid": req["uid"], "allowed": True}
        if self.path == "/mutate":
            ops = [{"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}]
            if not (obj.get("metadata") or {}).get("labels"):
                ops = [{"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}}]
            resp.update(patchType="JSONPatch", patch=base64.b64encode(json.dumps(ops).encode()).decode())
        elif self.path == "/validate":
            labels = (obj.get("metadata") or {}).get("labels") or {}
            if labels.get("deny") == "yes":
                resp = {"uid": req["uid"], "allowed": False,
                        "status": {"code": 403, "reason": "Forbidden", "message": "no thanks"}}
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                           "response": resp}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def hook_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("hook")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                   check=True, capture_output=True)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"https://127.0.0.1:{srv.server_address[1]}", base64.b64encode((d / "cert.pem").read_bytes()).decode()
    srv.shutdown()


def config(kind, name, url, ca, path, namespace, policy="Fail"):
    return json.dumps({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": name},
        "webhooks": [{"name": f"{name}.example.com", "clientConfig": {"url": url + path, "caBundle": ca},
                      "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""],
                                 "apiVersions": ["v1"], "resources": ["configmaps"]}],
                      "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                      "sideEffects": "None", "admissionReviewVersions": ["v1"],
                      "failurePolicy": policy, "timeoutSeconds": 2}]})


def test_mutating_and_validating_webhooks_are_called(kubectl, hook_server):
    url, ca = hook_server
    kubectl("create", "namespace", "hooked")
    kubectl("apply", "-f", "-", input=config("MutatingWebhookConfiguration", "mut", url, ca, "/mutate", "hooked"))
    kubectl("apply", "-f", "-", input=config("ValidatingWebhookConfiguration", "val", url, ca, "/validate", "hooked"))
    kubectl("create", "configmap", "plain", "-n", "hooked", "--from-literal=a=1")
    cm = json.loads(kubectl("get", "configmap", "plain", "-n", "hooked", "-o", "json"))
    assert cm["metadata"]["labels"] == {"mutated": "yes"}
    req = next(r for r in SEEN if r["name"] == "plain")
    assert req["operation"] == "CREATE" and req["namespace"] == "hooked"
    assert req["resource"] == {"group": "", "version": "v1", "resource": "configmaps"}
    p = kubectl.run("create", "-n", "hooked", "-f", "-", check=False, input=json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "denied", "labels": {"deny": "yes"}}}))
    assert p.returncode == 1
    assert 'admission webhook "val.example.com" denied the request: no thanks' in p.stderr
    p = kubectl.run("label", "configmap", "plain", "-n", "hooked", "deny=yes", check=False)
    assert p.returncode == 1 and "denied the request" in p.stderr
    # Other namespaces are not selected.
    kubectl("create", "configmap", "elsewhere", "--from-literal=a=1")
    assert "labels" not in json.loads(kubectl("get", "configmap", "elsewhere", "-o", "json"))["metadata"]
    kubectl("delete", "configmap", "elsewhere")
    kubectl("delete", "mutatingwebhookconfiguration", "mut")
    kubectl("delete", "validatingwebhookconfiguration", "val")


def test_failure_policy_decides_for_an_unreachable_webhook(kubectl, hook_server):
    _, ca = hook_server
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"https://127.0.0.1:{s.getsockname()[1]}"
    kubectl("create", "namespace", "fragile")
    kubectl("apply", "-f", "-", input=config("ValidatingWebhookConfiguration", "dead", dead, ca, "/", "fragile"))
    p = kubectl.run("create", "configmap", "x", "-n", "fragile", check=False)
    assert p.returncode == 1 and "Internal error occurred" in p.stderr
    assert 'failed calling webhook "dead.example.com"' in p.stderr and "connection refused" in p.stderr
    kubectl("apply", "-f", "-", input=config("ValidatingWebhookConfiguration", "dead", dead, ca, "/", "fragile",
                                             policy="Ignore"))
    kubectl("create", "configmap", "x", "-n", "fragile")
    # A broken webhook never guards its own configuration: it can always be removed.
    kubectl("delete", "validatingwebhookconfiguration", "dead")
