"""A round trip of every built-in kind we serve, as issue 12's acceptance asks: `kubectl create -f`
a manifest, `get -o yaml`, re-apply the same manifest unchanged, feed the read-back YAML to
`kubectl replace`, and `kubectl explain` the kind."""

import pytest
import yaml

POD_SPEC = {"containers": [{"name": "c", "image": "busybox:1.36"}]}
TEMPLATE = {"metadata": {"labels": {"app": "rt"}}, "spec": POD_SPEC}
SELECTOR = {"matchLabels": {"app": "rt"}}

# kind → (apiVersion, body without apiVersion/kind/metadata)
MANIFESTS = {
    "ConfigMap": ("v1", {"data": {"a": "1"}}),
    "Secret": ("v1", {"stringData": {"a": "1"}}),
    "ServiceAccount": ("v1", {}),
    "Service": ("v1", {"spec": {"selector": {"app": "rt"}, "ports": [{"port": 80}]}}),
    "Pod": ("v1", {"spec": POD_SPEC}),
    "PodTemplate": ("v1", {"template": TEMPLATE}),
    "ReplicationController": ("v1", {"spec": {"template": TEMPLATE}}),
    "PersistentVolumeClaim": ("v1", {"spec": {"accessModes": ["ReadWriteOnce"],
                                              "resources": {"requests": {"storage": "1Gi"}}}}),
    "PersistentVolume": ("v1", {"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                         "hostPath": {"path": "/tmp/rt"}}}),
    "LimitRange": ("v1", {"spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}}]}}),
    "ResourceQuota": ("v1", {"spec": {"hard": {"pods": "10"}}}),
    "Endpoints": ("v1", {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}),
    "Event": ("v1", {"involvedObject": {"kind": "Pod", "name": "x"}, "reason": "R", "message": "m"}),
    "Deployment": ("apps/v1", {"spec": {"selector": SELECTOR, "template": TEMPLATE}}),
    "ReplicaSet": ("apps/v1", {"spec": {"selector": SELECTOR, "template": TEMPLATE}}),
    "DaemonSet": ("apps/v1", {"spec": {"selector": SELECTOR, "template": TEMPLATE}}),
    "StatefulSet": ("apps/v1", {"spec": {"selector": SELECTOR, "template": TEMPLATE, "serviceName": "rt"}}),
    "ControllerRevision": ("apps/v1", {"revision": 1, "data": {"spec": {}}}),
    "Job": ("batch/v1", {"spec": {"template": {"spec": {**POD_SPEC, "restartPolicy": "Never"}}}}),
    "CronJob": ("batch/v1", {"spec": {"schedule": "*/10 * * * *", "jobTemplate": {"spec": {
        "template": {"spec": {**POD_SPEC, "restartPolicy": "OnFailure"}}}}}}),
    "PodDisruptionBudget": ("policy/v1", {"spec": {"minAvailable": 1, "selector": SELECTOR}}),
    "PriorityClass": ("scheduling.k8s.io/v1", {"value": 100, "description": "rt"}),
    "HorizontalPodAutoscaler": ("autoscaling/v2", {"spec": {"maxReplicas": 3, "scaleTargetRef": {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "rt"}}}),
    "Lease": ("coordination.k8s.io/v1", {"spec": {"holderIdentity": "me"}}),
    "EndpointSlice": ("discovery.k8s.io/v1", {"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}]}),
    "Ingress": ("networking.k8s.io/v1", {"spec": {"defaultBackend": {"service": {"name": "rt", "port": {"number": 80}}}}}),
    "IngressClass": ("networking.k8s.io/v1", {"spec": {"controller": "example.com/ingress"}}),
    "NetworkPolicy": ("networking.k8s.io/v1", {"spec": {"podSelector": SELECTOR}}),
    "StorageClass": ("storage.k8s.io/v1", {"provisioner": "example.com/rt"}),
    "CSIDriver": ("storage.k8s.io/v1", {"spec": {}}),
    "VolumeAttachment": ("storage.k8s.io/v1", {"spec": {"attacher": "example.com/rt", "nodeName": "n1",
                                                         "source": {"persistentVolumeName": "pv"}}}),
    "Role": ("rbac.authorization.k8s.io/v1", {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
    "ClusterRole": ("rbac.authorization.k8s.io/v1", {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", {"roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                                 "kind": "Role", "name": "rt"},
                                                     "subjects": [{"kind": "User", "name": "jane"}]}),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io/v1", {"roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                                        "kind": "ClusterRole", "name": "rt"},
                                                            "subjects": [{"kind": "Group", "name": "devs"}]}),
    "ValidatingWebhookConfiguration": ("admissionregistration.k8s.io/v1", {"webhooks": [{
        "name": "rt.example.com", "clientConfig": {"url": "https://h.example/v"}, "sideEffects": "None",
        "admissionReviewVersions": ["v1"]}]}),
    "RuntimeClass": ("node.k8s.io/v1", {"handler": "runc"}),
}


@pytest.mark.parametrize("kind", sorted(MANIFESTS))
def test_round_trip(kubectl, tmp_path, kind):
    api_version, body = MANIFESTS[kind]
    name = "rt-" + kind.lower()[:40]
    manifest = yaml.safe_dump({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, **body})
    ref = f"{kind.lower()}.{api_version.split('/')[0]}" if "/" in api_version else kind.lower()
    assert "created" in kubectl("create", "-f", "-", "--save-config", input=manifest)
    got = yaml.safe_load(kubectl("get", ref, name, "-o", "yaml"))
    assert got["kind"] == kind and got["metadata"]["name"] == name and got["metadata"]["uid"]
    out = kubectl("apply", "-f", "-", input=manifest)
    # kubectl always sends a replace-strategy map (a PDB's selector) and a Secret's write-only
    # stringData, so it says "configured" there — on any cluster; the object must not change.
    assert ("configured" if kind in ("PodDisruptionBudget", "Secret") else "unchanged") in out, out
    again = yaml.safe_load(kubectl("get", ref, name, "-o", "yaml"))
    assert again["metadata"]["resourceVersion"] == got["metadata"]["resourceVersion"]
    # What we handed out is accepted back as it is.
    (tmp_path / "got.yaml").write_text(yaml.safe_dump(got))
    assert "replaced" in kubectl("replace", "-f", str(tmp_path / "got.yaml"))
    assert "FIELDS:" in kubectl("explain", kind.lower(), f"--api-version={api_version}")
    kubectl("delete", ref, name, "--wait=false")
