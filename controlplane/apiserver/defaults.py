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
    for key in ("containers", "initContainers"):
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
    _set(spec, "priority", 0)  # the Priority admission plugin
    _set(spec, "preemptionPolicy", "PreemptLowerPriority")
    # DefaultTolerationSeconds admission: evict 5 minutes after the node goes away.
    tolerations = spec.setdefault("tolerations", []) if spec.get("tolerations") is None \
        else spec["tolerations"]
    have = {t.get("key") for t in tolerations if isinstance(t, dict)}
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if key not in have:
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


DEFAULTERS: dict[str, Callable[[dict], None]] = {
    "Pod": pod, "Deployment": deployment, "ReplicaSet": replicaset, "DaemonSet": daemonset,
    "Service": service, "Namespace": namespace, "Secret": secret, "EndpointSlice": endpointslice,
}


def apply(kind: str, obj: dict) -> None:
    fn = DEFAULTERS.get(kind)
    if fn:
        fn(obj)
