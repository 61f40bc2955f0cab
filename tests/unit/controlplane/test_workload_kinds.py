"""The kinds the scheduler and controllers build on, served as a 1.37 cluster serves them:
batch/v1 Job and CronJob, apps/v1 StatefulSet and ControllerRevision, policy/v1
PodDisruptionBudget (with the eviction API honouring it), scheduling.k8s.io/v1 PriorityClass
(with Priority admission), ReplicationController, PersistentVolume(Claim) — driven by the real
kubectl 1.37 and the kubernetes client."""

import json

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException


def api_client(server):
    return config.new_client_from_config(config_file=str(server.kubeconfig))


def get(kubectl, *what):
    return json.loads(kubectl("get", *what, "-o", "json"))


def fails(kubectl, *args, input=None):
    p = kubectl.run(*args, input=input, check=False)
    assert p.returncode != 0, p.stdout
    return p.stderr


def test_discovery_short_names_and_explain(kubectl):
    out = kubectl("api-resources")
    for line in ("cronjobs   ", "cj", "batch/v1", "statefulsets", "sts", "controllerrevisions",
                 "poddisruptionbudgets", "pdb", "policy/v1", "priorityclasses", "pc",
                 "scheduling.k8s.io/v1", "replicationcontrollers", "rc", "persistentvolumeclaims",
                 "pvc", "persistentvolumes", "pv"):
        assert line in out, line
    assert "completions" in kubectl("explain", "job.spec.completions")
    assert "schedule" in kubectl("explain", "cronjob.spec")
    assert "minAvailable" in kubectl("explain", "pdb.spec")


def test_job_defaults_generated_selector_and_validation(kubectl):
    kubectl("create", "job", "j1", "--image=busybox:1.36", "--", "echo", "hi")
    job = get(kubectl, "job", "j1")
    uid, spec = job["metadata"]["uid"], job["spec"]
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    labels = spec["template"]["metadata"]["labels"]
    assert labels["batch.kubernetes.io/job-name"] == "j1" and labels["controller-uid"] == uid
    assert job["metadata"]["labels"]["job-name"] == "j1"  # a Job without labels takes its pods'
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"], spec["completionMode"],
            spec["suspend"]) == (1, 1, 6, "NonIndexed", False)
    assert job["status"] == {} and job["metadata"]["generation"] == 1
    header = kubectl("get", "jobs", "-o", "wide").splitlines()[0].split()
    assert header == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    err = fails(kubectl, "patch", "job", "j1", "--type=merge", "-p",
                '{"spec":{"template":{"spec":{"containers":[{"name":"j1","image":"other"}]}}}}')
    assert "spec.template: Invalid value" in err and "field is immutable" in err
    bad = """
apiVersion: batch/v1
kind: Job
metadata: {{name: {name}}}
spec:
  completions: {completions}
  template:
    spec:
      restartPolicy: {restart}
      containers: [{{name: c, image: busybox:1.36}}]
"""
    err = fails(kubectl, "apply", "-f", "-", input=bad.format(name="neg", completions=-1, restart="Never"))
    assert "spec.completions: Invalid value: -1: must be greater than or equal to 0" in err
    err = fails(kubectl, "apply", "-f", "-", input=bad.format(name="always", completions=1, restart="Always"))
    assert ('spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: '
            '"OnFailure", "Never"') in err
    kubectl("delete", "job", "j1")


def test_cronjob_schedule_is_validated(kubectl):
    kubectl("create", "cronjob", "every5", "--image=busybox:1.36", "--schedule=*/5 * * * *", "--", "date")
    cj = get(kubectl, "cronjob", "every5")["spec"]
    assert (cj["concurrencyPolicy"], cj["suspend"], cj["successfulJobsHistoryLimit"],
            cj["failedJobsHistoryLimit"]) == ("Allow", False, 3, 1)
    assert kubectl("get", "cj").splitlines()[0].split() == \
        ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"]
    err = fails(kubectl, "create", "cronjob", "bad", "--image=busybox", "--schedule=61 * * * *")
    assert 'spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61' in err
    err = fails(kubectl, "create", "cronjob", "bad", "--image=busybox", "--schedule=not a cron")
    assert 'spec.schedule: Invalid value: "not a cron": expected exactly 5 fields, found 3' in err
    for ok in ("@hourly", "0 0 * * MON-FRI", "15,45 */2 1-15 JAN,JUL ?"):
        kubectl("create", "cronjob", "ok", "--image=busybox", f"--schedule={ok}")
        kubectl("delete", "cronjob", "ok")
    err = fails(kubectl, "patch", "cronjob", "every5", "--type=merge", "-p", '{"spec":{"timeZone":"Mars/Base"}}')
    assert 'spec.timeZone: Invalid value: "Mars/Base": unknown time zone Mars/Base' in err
    kubectl("delete", "cronjob", "every5")


def test_deployment_selector_must_match_template(kubectl):
    err = fails(kubectl, "apply", "-f", "-", input="""
apiVersion: apps/v1
kind: Deployment
metadata: {name: mismatch}
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: b}}
    spec: {containers: [{name: c, image: busybox:1.36}]}
""")
    assert "spec.template.metadata.labels: Invalid value" in err
    assert "`selector` does not match template `labels`" in err


STS = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx:1.25}]}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""


def test_statefulset_defaults_scale_and_immutable_fields(kubectl):
    kubectl("apply", "-f", "-", input=STS)
    sts = get(kubectl, "sts", "web")
    spec = sts["spec"]
    assert spec["replicas"] == 1 and spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["volumeClaimTemplates"][0]["spec"]["volumeMode"] == "Filesystem"
    assert sts["status"] == {"availableReplicas": 0, "replicas": 0}
    kubectl("scale", "sts", "web", "--replicas=3")
    assert get(kubectl, "sts", "web")["spec"]["replicas"] == 3
    assert kubectl("get", "sts", "web").splitlines()[1].split()[:2] == ["web", "0/3"]
    err = fails(kubectl, "patch", "sts", "web", "--type=merge", "-p", '{"spec":{"serviceName":"other"}}')
    assert "spec: Forbidden: updates to statefulset spec for fields other than 'replicas'" in err
    kubectl("delete", "sts", "web")


def test_controller_revision_data_is_immutable(kubectl):
    kubectl("apply", "-f", "-", input="""
apiVersion: apps/v1
kind: ControllerRevision
metadata: {name: web-1}
revision: 1
data: {spec: {template: {}}}
""")
    assert kubectl("get", "controllerrevisions").splitlines()[0].split() == ["NAME", "CONTROLLER", "REVISION", "AGE"]
    err = fails(kubectl, "patch", "controllerrevision", "web-1", "--type=merge", "-p", '{"data":{"x":1}}')
    assert "data: Invalid value" in err and "field is immutable" in err
    kubectl("delete", "controllerrevision", "web-1")


def test_priority_classes_and_priority_admission(server, kubectl):
    pcs = {p["metadata"]["name"]: p["value"] for p in get(kubectl, "priorityclasses")["items"]}
    assert pcs["system-cluster-critical"] == 2000000000 and pcs["system-node-critical"] == 2000001000
    err = fails(kubectl, "delete", "pc", "system-node-critical")
    assert "this is a system priority class and cannot be deleted" in err
    err = fails(kubectl, "create", "priorityclass", "system-mine", "--value=5")
    assert "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved" in err
    err = fails(kubectl, "create", "priorityclass", "huge", "--value=2000000000")
    assert "value: Forbidden: maximum allowed value of a user defined priority is 1000000000" in err
    v1 = client.CoreV1Api(api_client(server))
    pod = lambda name, **spec: client.V1Pod(metadata=client.V1ObjectMeta(name=name), spec=client.V1PodSpec(
        containers=[client.V1Container(name="c", image="busybox:1.36")], **spec))
    made = v1.create_namespaced_pod("default", pod("prio-none"))
    assert made.spec.priority == 0 and made.spec.preemption_policy == "PreemptLowerPriority"
    made = v1.create_namespaced_pod("default", pod("prio-sys", priority_class_name="system-node-critical"))
    assert made.spec.priority == 2000001000
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_pod("default", pod("prio-bad", priority_class_name="nope"))
    assert e.value.status == 403 and "no PriorityClass with name nope was found" in json.loads(e.value.body)["message"]
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_pod("default", pod("prio-int", priority_class_name="system-node-critical", priority=7))
    assert e.value.status == 403 and "must not be provided in pod spec" in json.loads(e.value.body)["message"]
    kubectl("create", "priorityclass", "default-high", "--value=1000", "--global-default=true",
            "--preemption-policy=Never")
    err = fails(kubectl, "create", "priorityclass", "second", "--value=1", "--global-default=true")
    assert "PriorityClass default-high is already marked as default. Only one default can exist" in err
    made = v1.create_namespaced_pod("default", pod("prio-default"))
    assert (made.spec.priority, made.spec.priority_class_name, made.spec.preemption_policy) == \
        (1000, "default-high", "Never")
    err = fails(kubectl, "patch", "pc", "default-high", "-p", '{"value": 5}')
    assert "value: Forbidden: may not be changed in an update." in err
    assert kubectl("get", "pc", "default-high").splitlines()[0].split() == \
        ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]
    kubectl("delete", "pc", "default-high")
    kubectl("delete", "pod", "prio-none", "prio-sys", "prio-default")


def test_default_toleration_seconds_only_for_untolerated_taints(server):
    v1 = client.CoreV1Api(api_client(server))
    plain = v1.create_namespaced_pod("default", client.V1Pod(
        metadata=client.V1ObjectMeta(name="tol-plain"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox:1.36")])))
    assert sorted((t.key, t.effect, t.toleration_seconds) for t in plain.spec.tolerations) == [
        ("node.kubernetes.io/not-ready", "NoExecute", 300), ("node.kubernetes.io/unreachable", "NoExecute", 300)]
    everything = v1.create_namespaced_pod("default", client.V1Pod(
        metadata=client.V1ObjectMeta(name="tol-all"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox:1.36")],
                              tolerations=[client.V1Toleration(operator="Exists")])))
    assert [(t.key, t.operator) for t in everything.spec.tolerations] == [(None, "Exists")]
    v1.delete_namespaced_pod("tol-plain", "default")
    v1.delete_namespaced_pod("tol-all", "default")


def test_eviction_honours_the_disruption_budget(server, kubectl):
    kubectl("apply", "-f", "-", input="""
apiVersion: v1
kind: Node
metadata: {name: evict-node}
---
apiVersion: v1
kind: Pod
metadata: {name: guarded, labels: {app: guarded}}
spec:
  nodeName: evict-node
  containers: [{name: c, image: busybox:1.36}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: guard}
spec: {minAvailable: 1, selector: {matchLabels: {app: guarded}}}
""")
    pdb = get(kubectl, "pdb", "guard")
    assert pdb["status"] == {"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0}
    assert kubectl("get", "pdb").splitlines()[0].split() == \
        ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"]
    # What the kubelet and the disruption controller would report: running, and no room to spare.
    kubectl("patch", "pod", "guarded", "--subresource=status", "--type=merge", "-p",
            '{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}')
    kubectl("patch", "pdb", "guard", "--subresource=status", "--type=merge", "-p",
            '{"status":{"observedGeneration":1,"currentHealthy":1,"desiredHealthy":1,"expectedPods":1}}')
    v1 = client.CoreV1Api(api_client(server))
    eviction = client.V1Eviction(metadata=client.V1ObjectMeta(name="guarded", namespace="default"))
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_pod_eviction("guarded", "default", eviction)
    body = json.loads(e.value.body)
    assert e.value.status == 429 and body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"][0] == {"reason": "DisruptionBudget", "message":
                                            "The disruption budget guard needs 1 healthy pods and has 1 currently"}
    p = kubectl.run("drain", "evict-node", "--force", "--timeout=3s", "--pod-selector=app=guarded",
                    check=False)
    assert p.returncode != 0 and "disruption budget" in p.stderr
    kubectl("patch", "pdb", "guard", "--subresource=status", "--type=merge", "-p",
            '{"status":{"disruptionsAllowed":1}}')
    v1.create_namespaced_pod_eviction("guarded", "default", eviction)
    pod = v1.read_namespaced_pod("guarded", "default")  # a running pod: graceful deletion
    assert pod.metadata.deletion_timestamp is not None
    assert any(c.type == "DisruptionTarget" and c.reason == "EvictionByEvictionAPI" for c in pod.status.conditions)
    st = get(kubectl, "pdb", "guard")["status"]
    assert st["disruptionsAllowed"] == 0 and "guarded" in st["disruptedPods"]
    v1.delete_namespaced_pod("guarded", "default", grace_period_seconds=0)
    kubectl("delete", "pdb", "guard")
    kubectl("delete", "node", "evict-node")


def test_pdb_validation(kubectl):
    err = fails(kubectl, "create", "pdb", "both", "--selector=app=x", "--min-available=1",
                "--max-unavailable=1")
    assert "min-available and max-unavailable cannot be both specified" in err or \
        "minAvailable and maxUnavailable cannot be both set" in err
    err = fails(kubectl, "apply", "-f", "-", input="""
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: pct}
spec: {maxUnavailable: "150%", selector: {matchLabels: {app: x}}}
""")
    assert 'spec.maxUnavailable: Invalid value: "150%": must not be greater than 100%' in err


def test_replication_controller_defaults_and_scale(kubectl):
    kubectl("apply", "-f", "-", input="""
apiVersion: v1
kind: ReplicationController
metadata: {name: rc1}
spec:
  template:
    metadata: {labels: {app: rc1}}
    spec: {containers: [{name: c, image: nginx:1.25}]}
""")
    rc = get(kubectl, "rc", "rc1")
    assert rc["spec"]["selector"] == {"app": "rc1"} and rc["metadata"]["labels"] == {"app": "rc1"}
    assert rc["spec"]["replicas"] == 1 and rc["status"] == {"replicas": 0}
    kubectl("scale", "rc", "rc1", "--replicas=2")
    assert kubectl("get", "rc", "rc1", "-o", "wide").split()[8:12] == ["rc1", "2", "0", "0"]
    kubectl("delete", "rc", "rc1")


def test_persistent_volumes_and_claims(kubectl):
    kubectl("apply", "-f", "-", input="""
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv1}
spec: {capacity: {storage: 1Gi}, accessModes: [ReadWriteOnce], hostPath: {path: /tmp/pv1}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: claim1}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
""")
    pv = get(kubectl, "pv", "pv1")
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain" and pv["status"]["phase"] == "Pending"
    pvc = get(kubectl, "pvc", "claim1")
    assert pvc["spec"]["volumeMode"] == "Filesystem" and pvc["status"] == {"phase": "Pending"}
    assert kubectl("get", "pv").splitlines()[0].split()[:4] == ["NAME", "CAPACITY", "ACCESS", "MODES"]
    err = fails(kubectl, "patch", "pvc", "claim1", "-p", '{"spec":{"accessModes":["ReadWriteMany"]}}')
    assert "spec: Forbidden: spec is immutable after creation" in err
    err = fails(kubectl, "apply", "-f", "-", input="""
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv-bad}
spec: {accessModes: [ReadWriteOnce]}
""")
    assert "spec.capacity: Required value" in err and "must specify a volume type" in err
    kubectl("delete", "pvc", "claim1")
    kubectl("delete", "pv", "pv1")


def test_python_client_typed_apis(server):
    c = api_client(server)
    batch = client.BatchV1Api(c)
    job = batch.create_namespaced_job("default", client.V1Job(
        metadata=client.V1ObjectMeta(name="pyjob"),
        spec=client.V1JobSpec(template=client.V1PodTemplateSpec(spec=client.V1PodSpec(
            restart_policy="Never", containers=[client.V1Container(name="c", image="busybox:1.36")])))))
    assert job.spec.backoff_limit == 6 and job.spec.selector.match_labels
    assert [j.metadata.name for j in batch.list_namespaced_job("default").items] == ["pyjob"]
    batch.delete_namespaced_job("pyjob", "default")
    names = [p.metadata.name for p in client.SchedulingV1Api(c).list_priority_class().items]
    assert "system-node-critical" in names
    assert client.PolicyV1Api(c).list_namespaced_pod_disruption_budget("default").items == []
    assert client.AppsV1Api(c).list_namespaced_stateful_set("default").items == []


def test_job_from_cronjob_keeps_inlined_fields_through_protobuf(kubectl):
    """`kubectl create job --from=cronjob/x` sends the CronJob's template back as protobuf, where
    a Volume's source, a Probe's handler and a key selector's name are embedded structs that
    JSON inlines: they must come back as the same JSON."""
    kubectl("apply", "-f", "-", input="""
apiVersion: batch/v1
kind: CronJob
metadata: {name: tmpl}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          volumes: [{name: cfg, configMap: {name: app-config}}]
          containers:
          - name: c
            image: busybox:1.36
            env: [{name: K, valueFrom: {configMapKeyRef: {name: app-config, key: k}}}]
            readinessProbe: {exec: {command: [cat, /tmp/ok]}}
""")
    kubectl("create", "job", "from-tmpl", "--from=cronjob/tmpl")
    spec = get(kubectl, "job", "from-tmpl")["spec"]["template"]["spec"]
    assert spec["volumes"] == [{"name": "cfg", "configMap": {"name": "app-config", "defaultMode": 420}}]
    c = spec["containers"][0]
    assert c["env"][0]["valueFrom"]["configMapKeyRef"] == {"name": "app-config", "key": "k"}
    assert c["readinessProbe"]["exec"] == {"command": ["cat", "/tmp/ok"]}
    kubectl("delete", "job", "from-tmpl")
    kubectl("delete", "cronjob", "tmpl")
