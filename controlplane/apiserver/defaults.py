"""Defaulting: the values the server fills in when a client leaves a field out.

These follow the kube-apiserver's SetDefaults_* functions (pkg/apis/core/v1/defaults.go,
pkg/apis/apps/v1/defaults.go) and the admission plugins every cluster runs (ServiceAccount,
DefaultTolerationSeconds). They matter to users: `kubectl get pod -o yaml` shows them, and the
node agent relies on them (imagePullPolicy, restartPolicy, terminationGracePeriodSeconds).
Defaulting only adds; it never overrides a value the client sent.
"""

from __future__ import annotations

from typing import Callable


def _set(d: dict, key: str, value) -> None:
    if d.get(key) is None:
        d[key] = value


def image_pull_policy(image: str) -> str:
    """Always for `:latest` or untagged images (the tag may move), else IfNotPresent. A digest
    (`@sha256:...`) pins the content, so IfNotPresent."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _probe(p: dict | None) -> None:
    if not isinstance(p, dict):
        return
    _set(p, "timeoutSeconds", 1)
    _set(p, "periodSeconds", 10)
    _set(p, "successThreshold", 1)
    _set(p, "failureThreshold", 3)
    if isinstance(p.get("httpGet"), dict):
        _set(p["httpGet"], "path", "/")
        _set(p["httpGet"], "scheme", "HTTP")


def _container(c: dict, host_network: bool) -> None:
    if not isinstance(c, dict):
        return
    if isinstance(c.get("image"), str):
        _set(c, "imagePullPolicy", image_pull_policy(c["image"]))
    _set(c, "terminationMessagePath", "/dev/termination-log")
    _set(c, "terminationMessagePolicy", "File")
    _set(c, "resources", {})
    for port in c.get("ports") or []:
        if isinstance(port, dict):
            _set(port, "protocol", "TCP")
            if host_network and port.get("hostPort") is None:
                port["hostPort"] = port.get("containerPort")
    for env in c.get("env") or []:
        ref = (env.get("valueFrom") or {}).get("fieldRef") if isinstance(env, dict) else None
        if isinstance(ref, dict):
            _set(ref, "apiVersion", "v1")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(c.get(probe))


def pod_spec(spec: dict, admission: bool = False) -> None:
    """SetDefaults_PodSpec; with admission=True (pods themselves, not templates) also what the
    ServiceAccount, Priority and DefaultTolerationSeconds admission plugins add."""
    if not isinstance(spec, dict):
        return
    _set(spec, "restartPolicy", "Always")
    _set(spec, "terminationGracePeriodSeconds", 30)
    _set(spec, "dnsPolicy", "ClusterFirst")
    _set(spec, "schedulerName", "default-scheduler")
    _set(spec, "securityContext", {})
    _set(spec, "enableServiceLinks", True)
    host_net = bool(spec.get("hostNetwork"))
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            _container(c, host_net)
    for v in spec.get("volumes") or []:
        if not isinstance(v, dict):
            continue
        for src in ("configMap", "secret"):
            if isinstance(v.get(src), dict):
                _set(v[src], "defaultMode", 420)
        if isinstance(v.get("hostPath"), dict):
            _set(v["hostPath"], "type", "")
    if not admission:
        return
    _set(spec, "serviceAccountName", "default")  # the ServiceAccount admission plugin
    _set(spec, "serviceAccount", spec["serviceAccountName"])  # deprecated alias, still filled
    # (priority and preemptionPolicy: the Priority admission plugin, admission.py)
    default_toleration_seconds(spec)


# DefaultTolerationSeconds admission: a pod that does not tolerate these NoExecute taints is
# evicted 5 minutes after its node goes NotReady or unreachable (--default-*-toleration-seconds).
_NOT_READY, _UNREACHABLE = "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"


def default_toleration_seconds(spec: dict) -> None:
    tolerations = spec.get("tolerations")
    if not isinstance(tolerations, list):
        tolerations = spec["tolerations"] = []

    def tolerates(key: str) -> bool:  # an empty key or effect tolerates everything
        return any(isinstance(t, dict) and t.get("key", "") in (key, "") and
                   t.get("effect", "") in ("NoExecute", "") for t in tolerations)
    for key in (_NOT_READY, _UNREACHABLE):
        if not tolerates(key):
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": 300})


def _template(spec: dict) -> None:
    tmpl = spec.get("template")
    if isinstance(tmpl, dict):
        pod_spec(tmpl.setdefault("spec", {}) if tmpl.get("spec") is None else tmpl["spec"])


def pod(obj: dict) -> None:
    pod_spec(obj.get("spec"), admission=True)


def deployment(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    _set(spec, "replicas", 1)
    strategy = spec.setdefault("strategy", {}) if spec.get("strategy") is None else spec["strategy"]
    _set(strategy, "type", "RollingUpdate")
    if strategy.get("type") == "RollingUpdate":
        ru = strategy.setdefault("rollingUpdate", {}) if strategy.get("rollingUpdate") is None \
            else strategy["rollingUpdate"]
        _set(ru, "maxUnavailable", "25%")
        _set(ru, "maxSurge", "25%")
    _set(spec, "revisionHistoryLimit", 10)
    _set(spec, "progressDeadlineSeconds", 600)
    _template(spec)


def replicaset(obj: dict) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        _set(spec, "replicas", 1)
        _template(spec)


def daemonset(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    strategy = spec.setdefault("updateStrategy", {}) if spec.get("updateStrategy") is None \
        else spec["updateStrategy"]
    _set(strategy, "type", "RollingUpdate")
    if strategy.get("type") == "RollingUpdate":
        ru = strategy.setdefault("rollingUpdate", {}) if strategy.get("rollingUpdate") is None \
            else strategy["rollingUpdate"]
        _set(ru, "maxUnavailable", 1)
        _set(ru, "maxSurge", 0)
    _set(spec, "revisionHistoryLimit", 10)
    _template(spec)


def service(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    _set(spec, "type", "ClusterIP")
    _set(spec, "sessionAffinity", "None")
    _set(spec, "internalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        _set(spec, "externalTrafficPolicy", "Cluster")
    for p in spec.get("ports") or []:
        if isinstance(p, dict):
            _set(p, "protocol", "TCP")
            _set(p, "targetPort", p.get("port"))


def namespace(obj: dict) -> None:
    name = (obj.get("metadata") or {}).get("name")
    if name:  # the NamespaceDefaultLabelName feature: every namespace labels itself
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    spec = obj.setdefault("spec", {}) if obj.get("spec") is None else obj["spec"]
    if isinstance(spec, dict):
        _set(spec, "finalizers", ["kubernetes"])
    status = obj.setdefault("status", {}) if obj.get("status") is None else obj["status"]
    if isinstance(status, dict):
        _set(status, "phase", "Active")


def secret(obj: dict) -> None:
    _set(obj, "type", "Opaque")


def endpointslice(obj: dict) -> None:
    for p in obj.get("ports") or []:
        if isinstance(p, dict):
            _set(p, "protocol", "TCP")


def _pvc_spec(spec: dict) -> None:
    if isinstance(spec, dict):
        _set(spec, "volumeMode", "Filesystem")


def _pvc_template(pvc: dict) -> None:
    """A claim, standalone or a StatefulSet's volumeClaimTemplates item (SetDefaults_PVC)."""
    if not isinstance(pvc, dict):
        return
    _pvc_spec(pvc.get("spec"))
    status = pvc.setdefault("status", {}) if pvc.get("status") is None else pvc["status"]
    if isinstance(status, dict):
        _set(status, "phase", "Pending")


def statefulset(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    _set(spec, "replicas", 1)
    _set(spec, "podManagementPolicy", "OrderedReady")
    strategy = spec.setdefault("updateStrategy", {}) if spec.get("updateStrategy") is None \
        else spec["updateStrategy"]
    if strategy.get("type") is None:
        strategy["type"] = "RollingUpdate"
        _set(strategy, "rollingUpdate", {"partition": 0})
    if strategy.get("type") == "RollingUpdate" and isinstance(strategy.get("rollingUpdate"), dict):
        _set(strategy["rollingUpdate"], "partition", 0)
    policy = spec.setdefault("persistentVolumeClaimRetentionPolicy", {}) \
        if spec.get("persistentVolumeClaimRetentionPolicy") is None \
        else spec["persistentVolumeClaimRetentionPolicy"]
    _set(policy, "whenDeleted", "Retain")
    _set(policy, "whenScaled", "Retain")
    _set(spec, "revisionHistoryLimit", 10)
    for pvc in spec.get("volumeClaimTemplates") or []:
        _pvc_template(pvc)
    _template(spec)


def job_spec(spec: dict) -> None:
    _template(spec)


def job(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    _set(spec, "parallelism", 1)
    _set(spec, "backoffLimit", 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6)
    _set(spec, "completionMode", "NonIndexed")
    _set(spec, "suspend", False)
    _set(spec, "podReplacementPolicy",
         "Failed" if spec.get("podFailurePolicy") is not None else "TerminatingOrFailed")
    _template(spec)
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    md = obj.get("metadata")
    if labels and isinstance(md, dict) and not md.get("labels"):
        md["labels"] = dict(labels)  # a Job without labels takes its pods' (SetDefaults_Job)


def cronjob(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    _set(spec, "concurrencyPolicy", "Allow")
    _set(spec, "suspend", False)
    _set(spec, "successfulJobsHistoryLimit", 3)
    _set(spec, "failedJobsHistoryLimit", 1)
    tmpl = spec.get("jobTemplate")
    if isinstance(tmpl, dict) and isinstance(tmpl.get("spec"), dict):
        _template(tmpl["spec"])


def replicationcontroller(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    if labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        md = obj.get("metadata")
        if isinstance(md, dict) and not md.get("labels"):
            md["labels"] = dict(labels)
    _set(spec, "replicas", 1)
    _template(spec)


def persistentvolume(obj: dict) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        _set(spec, "persistentVolumeReclaimPolicy", "Retain")
        _set(spec, "volumeMode", "Filesystem")
    status = obj.setdefault("status", {}) if obj.get("status") is None else obj["status"]
    if isinstance(status, dict):
        _set(status, "phase", "Pending")


def priorityclass(obj: dict) -> None:
    _set(obj, "value", 0)
    _set(obj, "preemptionPolicy", "PreemptLowerPriority")


def podtemplate(obj: dict) -> None:
    tmpl = obj.get("template")
    if isinstance(tmpl, dict):
        pod_spec(tmpl.setdefault("spec", {}) if tmpl.get("spec") is None else tmpl["spec"])


def networkpolicy(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or []:
            for port in (rule.get("ports") or []) if isinstance(rule, dict) else []:
                if isinstance(port, dict):
                    _set(port, "protocol", "TCP")
    if not spec.get("policyTypes"):  # a policy implies Ingress, and Egress when it has rules for it
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])


def storageclass(obj: dict) -> None:
    _set(obj, "reclaimPolicy", "Delete")
    _set(obj, "volumeBindingMode", "Immediate")


def csidriver(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    for key, value in (("attachRequired", True), ("podInfoOnMount", False),
                       ("storageCapacity", False), ("fsGroupPolicy", "ReadWriteOnceWithFSType"),
                       ("requiresRepublish", False), ("seLinuxMount", False)):
        _set(spec, key, value)
    if not spec.get("volumeLifecycleModes"):
        spec["volumeLifecycleModes"] = ["Persistent"]


def hpa(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    _set(spec, "minReplicas", 1)
    if not spec.get("metrics"):  # no metrics: scale on CPU, 80% of requests
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):  # only a behavior the user started gets the rest filled in
        up = behavior.setdefault("scaleUp", {}) if behavior.get("scaleUp") is None else behavior["scaleUp"]
        _set(up, "stabilizationWindowSeconds", 0)
        _set(up, "selectPolicy", "Max")
        _set(up, "policies", [{"type": "Pods", "value": 4, "periodSeconds": 15},
                              {"type": "Percent", "value": 100, "periodSeconds": 15}])
        down = behavior.setdefault("scaleDown", {}) if behavior.get("scaleDown") is None \
            else behavior["scaleDown"]
        _set(down, "stabilizationWindowSeconds", 300)
        _set(down, "selectPolicy", "Max")
        _set(down, "policies", [{"type": "Percent", "value": 100, "periodSeconds": 15}])


def _webhooks(obj: dict, mutating: bool) -> None:
    for w in obj.get("webhooks") or []:
        if not isinstance(w, dict):
            continue
        _set(w, "failurePolicy", "Fail")
        _set(w, "matchPolicy", "Equivalent")
        _set(w, "namespaceSelector", {})
        _set(w, "objectSelector", {})
        _set(w, "timeoutSeconds", 10)
        if mutating:
            _set(w, "reinvocationPolicy", "Never")
        for rule in w.get("rules") or []:
            if isinstance(rule, dict):
                _set(rule, "scope", "*")
        svc = (w.get("clientConfig") or {}).get("service")
        if isinstance(svc, dict):
            _set(svc, "port", 443)


def validating_admission_policy(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    _set(spec, "failurePolicy", "Fail")
    match = spec.get("matchConstraints")
    if isinstance(match, dict):
        _set(match, "matchPolicy", "Equivalent")
        _set(match, "namespaceSelector", {})
        _set(match, "objectSelector", {})


DEFAULTERS: dict[str, Callable[[dict], None]] = {
    "NetworkPolicy": networkpolicy, "StorageClass": storageclass, "CSIDriver": csidriver,
    "HorizontalPodAutoscaler": hpa,
    "ValidatingWebhookConfiguration": lambda o: _webhooks(o, mutating=False),
    "MutatingWebhookConfiguration": lambda o: _webhooks(o, mutating=True),
    "ValidatingAdmissionPolicy": validating_admission_policy,
    "Pod": pod, "Deployment": deployment, "ReplicaSet": replicaset, "DaemonSet": daemonset,
    "StatefulSet": statefulset, "Job": job, "CronJob": cronjob,
    "ReplicationController": replicationcontroller, "PersistentVolume": persistentvolume,
    "PersistentVolumeClaim": _pvc_template, "PriorityClass": priorityclass, "PodTemplate": podtemplate,
    "Service": service, "Namespace": namespace, "Secret": secret, "EndpointSlice": endpointslice,
}


def apply(kind: str, obj: dict) -> None:
    fn = DEFAULTERS.get(kind)
    if fn:
        fn(obj)
