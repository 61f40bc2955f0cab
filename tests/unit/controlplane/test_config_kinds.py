"""The kinds that configure a cluster — networking.k8s.io, storage.k8s.io, rbac, autoscaling/v2,
admissionregistration.k8s.io, node.k8s.io — stored as a 1.37 cluster stores them (defaults,
validation, kubectl's columns), and `kubectl apply --prune` with kubectl's default allowlist."""

import json


def get(kubectl, *what):
    return json.loads(kubectl("get", *what, "-o", "json"))


def fails(kubectl, *args, input=None):
    p = kubectl.run(*args, input=input, check=False)
    assert p.returncode != 0, p.stdout
    return p.stderr


def test_ingress_from_kubectl_create_and_validation(kubectl):
    # kubectl create sends protobuf; IngressRule inlines its IngressRuleValue.
    kubectl("create", "ingress", "ing1", "--rule=foo.com/bar=svc1:80", "--class=nginx")
    ing = get(kubectl, "ingress", "ing1")
    path = ing["spec"]["rules"][0]["http"]["paths"][0]
    assert path == {"path": "/bar", "pathType": "Exact",
                    "backend": {"service": {"name": "svc1", "port": {"number": 80}}}}
    assert ing["status"] == {"loadBalancer": {}}
    assert kubectl("get", "ing").splitlines()[0].split() == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    err = fails(kubectl, "apply", "-f", "-", input="""
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: nopath}
spec:
  rules:
  - http:
      paths: [{path: /, backend: {service: {name: s, port: {number: 80}}}}]
""")
    assert "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified" in err
    kubectl("delete", "ingress", "ing1")


def test_network_policy_defaults(kubectl):
    kubectl("apply", "-f", "-", input="""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np}
spec:
  podSelector: {matchLabels: {app: db}}
  egress: [{ports: [{port: 53}]}]
""")
    spec = get(kubectl, "netpol", "np")["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["egress"][0]["ports"][0]["protocol"] == "TCP"
    assert kubectl("get", "netpol", "np").split()[3:5] == ["np", "app=db"]
    kubectl("delete", "netpol", "np")


def test_storage_class_defaults_default_marker_and_immutability(kubectl):
    kubectl("apply", "-f", "-", input="""
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: local, annotations: {storageclass.kubernetes.io/is-default-class: "true"}}
provisioner: kubernetes.io/no-provisioner
""")
    sc = get(kubectl, "sc", "local")
    assert (sc["reclaimPolicy"], sc["volumeBindingMode"]) == ("Delete", "Immediate")
    assert "local (default)" in kubectl("get", "sc")
    err = fails(kubectl, "patch", "sc", "local", "--type=merge", "-p", '{"provisioner": "other"}')
    assert "provisioner: Forbidden: updates to provisioner are forbidden." in err
    err = fails(kubectl, "apply", "-f", "-", input="""
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: noprov}
""")
    assert "provisioner: Required value" in err
    kubectl("delete", "sc", "local")


def test_csi_driver_defaults(kubectl):
    kubectl("apply", "-f", "-", input="""
apiVersion: storage.k8s.io/v1
kind: CSIDriver
metadata: {name: hostpath.csi.k8s.io}
spec: {}
""")
    spec = get(kubectl, "csidriver", "hostpath.csi.k8s.io")["spec"]
    assert spec["attachRequired"] is True and spec["volumeLifecycleModes"] == ["Persistent"]
    assert spec["fsGroupPolicy"] == "ReadWriteOnceWithFSType"
    kubectl("delete", "csidriver", "hostpath.csi.k8s.io")


def test_rbac_objects_from_kubectl_create(kubectl):
    kubectl("create", "clusterrole", "pod-reader", "--verb=get,list", "--resource=pods")
    kubectl("create", "clusterrolebinding", "read-pods", "--clusterrole=pod-reader", "--user=jane")
    kubectl("create", "role", "cm-editor", "--verb=update", "--resource=configmaps")
    kubectl("create", "rolebinding", "edit-cms", "--role=cm-editor", "--serviceaccount=default:bot")
    role = get(kubectl, "clusterrole", "pod-reader")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    wide = kubectl("get", "rolebinding", "edit-cms", "-o", "wide")
    assert wide.splitlines()[0].split() == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    assert "Role/cm-editor" in wide and "default/bot" in wide
    err = fails(kubectl, "patch", "clusterrolebinding", "read-pods", "--type=merge", "-p",
                '{"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "other"}}')
    assert "roleRef: Invalid value" in err and "cannot change roleRef" in err
    err = fails(kubectl, "apply", "-f", "-", input="""
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: noverbs}
rules: [{apiGroups: [""], resources: [pods]}]
""")
    assert "rules[0].verbs: Required value: verbs must contain at least one value" in err
    kubectl("delete", "clusterrolebinding", "read-pods")
    kubectl("delete", "clusterrole", "pod-reader")
    kubectl("delete", "rolebinding", "edit-cms")
    kubectl("delete", "role", "cm-editor")


def test_horizontal_pod_autoscaler_from_kubectl_autoscale(kubectl):
    kubectl("create", "deployment", "scaled", "--image=busybox:1.36")
    kubectl("autoscale", "deployment", "scaled", "--min=2", "--max=5", "--cpu=60%")
    hpa = get(kubectl, "hpa", "scaled")
    assert hpa["apiVersion"] == "autoscaling/v2" and hpa["spec"]["minReplicas"] == 2
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 60}
    row = kubectl("get", "hpa", "scaled").splitlines()
    assert row[0].split() == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    assert "Deployment/scaled" in row[1] and "cpu: <unknown>/60%" in row[1]
    err = fails(kubectl, "patch", "hpa", "scaled", "--type=merge", "-p", '{"spec": {"maxReplicas": 1}}')
    assert "spec.maxReplicas: Invalid value: 1: must be greater than or equal to `minReplicas`" in err
    kubectl("delete", "hpa", "scaled")
    kubectl("delete", "deployment", "scaled")


def test_webhook_configurations_are_stored_with_defaults(kubectl):
    kubectl("apply", "-f", "-", input="""
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: vw}
webhooks:
- name: check.example.com
  clientConfig: {service: {namespace: default, name: hook}}
  sideEffects: None
  admissionReviewVersions: [v1]
  rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods]}]
""")
    w = get(kubectl, "validatingwebhookconfiguration", "vw")["webhooks"][0]
    assert (w["failurePolicy"], w["matchPolicy"], w["timeoutSeconds"]) == ("Fail", "Equivalent", 10)
    assert w["clientConfig"]["service"]["port"] == 443 and w["rules"][0]["scope"] == "*"
    err = fails(kubectl, "apply", "-f", "-", input="""
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: mw}
webhooks: [{name: m.example.com, clientConfig: {url: "https://h.example/m"}, admissionReviewVersions: [v1]}]
""")
    assert "webhooks[0].sideEffects: Required value" in err
    kubectl("delete", "validatingwebhookconfiguration", "vw")


def test_runtime_class(kubectl):
    kubectl("apply", "-f", "-", input="""
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: runc}
handler: runc
""")
    assert kubectl("get", "runtimeclass").split()[:3] == ["NAME", "HANDLER", "AGE"]
    err = fails(kubectl, "patch", "runtimeclass", "runc", "--type=merge", "-p", '{"handler": "crun"}')
    assert "handler: Invalid value" in err and "field is immutable" in err
    kubectl("delete", "runtimeclass", "runc")


def test_apply_prune_with_the_default_allowlist(kubectl, tmp_path):
    """kubectl's default prune allowlist names ConfigMap ... Ingress, Job, CronJob, StatefulSet:
    every one must be served for `apply --prune -l` to work at all."""
    both = """
apiVersion: v1
kind: ConfigMap
metadata: {name: keep, labels: {set: prune}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: gone, labels: {set: prune}}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: busybox:1.36}]
"""
    kubectl("apply", "-l", "set=prune", "-f", "-", input=both)
    out = kubectl("apply", "--prune", "-l", "set=prune", "-f", "-", input=both.split("---")[0])
    assert "configmap/keep unchanged" in out and "cronjob.batch/gone pruned" in out
    assert kubectl("get", "cronjobs", "-l", "set=prune", "-o", "name").strip() == ""
    kubectl("delete", "configmap", "keep")


def test_events_k8s_io_is_the_same_events_in_another_shape(server, kubectl):
    """events.k8s.io/v1 (what kube-scheduler's recorder writes) and core v1 Events are one
    store: an Event written through either API is read through both, fields renamed."""
    from kubernetes import client, config
    ev = client.EventsV1Api(config.new_client_from_config(config_file=str(server.kubeconfig)))
    made = ev.create_namespaced_event("default", client.EventsV1Event(
        metadata=client.V1ObjectMeta(name="sched-1"), event_time="2026-12-06T01:00:00.000000Z",
        reporting_controller="default-scheduler", reporting_instance="sched-host", action="Scheduling",
        reason="FailedScheduling", type="Warning", note="0/1 nodes are available",
        regarding=client.V1ObjectReference(kind="Pod", name="pending", namespace="default")))
    assert made.regarding.name == "pending" and made.note == "0/1 nodes are available"
    core = get(kubectl, "events", "sched-1")
    assert core["apiVersion"] == "v1" and core["involvedObject"]["name"] == "pending"
    assert core["message"] == "0/1 nodes are available" and core["reportingComponent"] == "default-scheduler"
    assert "FailedScheduling" in kubectl("get", "events")
    names = [e.metadata.name for e in ev.list_namespaced_event(
        "default", field_selector="regarding.name=pending").items]
    assert names == ["sched-1"]
    # A core Event is visible through events.k8s.io with the new names.
    kubectl("apply", "-f", "-", input="""
apiVersion: v1
kind: Event
metadata: {name: legacy}
involvedObject: {kind: Node, name: n1}
reason: Starting
message: kubelet starting
source: {component: kubelet}
count: 3
""")
    legacy = get(kubectl, "events.v1.events.k8s.io", "legacy")
    assert legacy["regarding"]["name"] == "n1" and legacy["note"] == "kubelet starting"
    assert legacy["deprecatedCount"] == 3 and legacy["deprecatedSource"] == {"component": "kubelet"}
    assert legacy["eventTime"] is None  # as Go writes a zero MicroTime
    err = fails(kubectl, "create", "-f", "-", input="""
apiVersion: events.k8s.io/v1
kind: Event
metadata: {name: bad}
reason: X
type: Normal
""")
    assert "eventTime: Required value" in err and "reportingController: Required value" in err
    ev.delete_namespaced_event("sched-1", "default")
    kubectl("delete", "events", "legacy")


def test_autoscaling_v1_is_a_view_on_v2(server, kubectl):
    """autoscaling/v1 clients see the CPU target as targetCPUUtilizationPercentage; what v1
    cannot say (other metrics) rides in an annotation and survives their read-modify-write."""
    from kubernetes import client, config
    c = config.new_client_from_config(config_file=str(server.kubeconfig))
    v1 = client.AutoscalingV1Api(c)
    v1.create_namespaced_horizontal_pod_autoscaler("default", client.V1HorizontalPodAutoscaler(
        metadata=client.V1ObjectMeta(name="v1hpa"),
        spec=client.V1HorizontalPodAutoscalerSpec(
            scale_target_ref=client.V1CrossVersionObjectReference(api_version="apps/v1", kind="Deployment", name="web"),
            max_replicas=4, target_cpu_utilization_percentage=70)))
    v2 = get(kubectl, "hpa", "v1hpa")
    assert v2["apiVersion"] == "autoscaling/v2" and v2["spec"]["minReplicas"] == 1
    assert v2["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]
    kubectl("patch", "hpa", "v1hpa", "--type=json", "-p", '[{"op":"add","path":"/spec/metrics/-","value":'
            '{"type":"Resource","resource":{"name":"memory","target":{"type":"AverageValue","averageValue":"100Mi"}}}}]')
    got = v1.read_namespaced_horizontal_pod_autoscaler("v1hpa", "default")
    assert got.spec.target_cpu_utilization_percentage == 70
    assert "memory" in got.metadata.annotations["autoscaling.alpha.kubernetes.io/metrics"]
    got.spec.max_replicas = 6
    v1.replace_namespaced_horizontal_pod_autoscaler("v1hpa", "default", got)
    v2 = get(kubectl, "hpa", "v1hpa")
    assert v2["spec"]["maxReplicas"] == 6
    assert [m["resource"]["name"] for m in v2["spec"]["metrics"]] == ["cpu", "memory"]
    assert "autoscaling.alpha.kubernetes.io/metrics" not in v2["metadata"].get("annotations", {})
    v1.delete_namespaced_horizontal_pod_autoscaler("v1hpa", "default")
