"""Server-side printing: the `Table` objects behind `kubectl get`'s columns.

kubectl asks for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` and prints what it gets:
the server, not kubectl, decides the columns (so a kubectl knows how to print kinds it has never
heard of). Columns with priority 1 are shown only with `-o wide`. Each row carries the object's
metadata (a PartialObjectMetadata) so that kubectl can add NAMESPACE for `-A` and LABELS for
`--show-labels`. The columns and cell formats follow pkg/printers/internalversion/printers.go.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Callable

from controlplane.apiserver import meta
from controlplane.apiserver.selectors import selector_string

Column = tuple[str, str, str, int]  # name, type, description, priority


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration: 45s, 2m30s, 5h, 3d4h, 2y."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m" if s % 60 == 0 else f"{m}m{s % 60}s"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        return f"{h}h" if m % 60 == 0 else f"{h}h{m % 60}m"
    if h < 48:
        return f"{h}h"
    if h < 24 * 8:
        return f"{h // 24}d" if h % 24 == 0 else f"{h // 24}d{h % 24}h"
    if h < 24 * 365 * 2:
        return f"{h // 24}d"
    if h < 24 * 365 * 8:
        dy = (h // 24) % 365
        return f"{h // 24 // 365}y" if dy == 0 else f"{h // 24 // 365}y{dy}d"
    return f"{h // 24 // 365}y"


def age(ts: str | None) -> str:
    t = meta.parse_time(ts or "")
    if t is None:
        return "<unknown>"
    return human_duration((_dt.datetime.now(_dt.timezone.utc) - t).total_seconds())


def _md(o: dict) -> dict:
    return o.get("metadata") or {}


def _spec(o: dict) -> dict:
    return o.get("spec") or {}


def _status(o: dict) -> dict:
    return o.get("status") or {}


def _none(v: Any) -> Any:
    return "<none>" if v in (None, "", []) else v


NAME: Column = ("Name", "string", "Name must be unique within a namespace.", 0)
AGE: Column = ("Age", "string", "CreationTimestamp is a timestamp representing the server time "
               "when this object was created.", 0)


def _images(spec: dict) -> tuple[str, str]:
    cs = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _terminated_reason(t: dict, prefix: str = "") -> str:
    if t.get("reason"):
        return prefix + t["reason"]
    return prefix + (f"Signal:{t['signal']}" if t.get("signal") else f"ExitCode:{t.get('exitCode', 0)}")


def _pod_row(o: dict) -> list:
    """The STATUS, READY and RESTARTS of `kubectl get pods`, as upstream's printPod
    (pkg/printers/internalversion/printers.go) computes them: status.reason (Evicted, ...) over
    the phase, then init containers, then containers; a deleted pod is Terminating unless its
    phase is terminal (an evicted pod being deleted still says Evicted)."""
    spec, st, md = _spec(o), _status(o), _md(o)
    phase = st.get("phase") or ""
    reason = st.get("reason") or phase
    conds = {c.get("type"): c for c in st.get("conditions") or [] if isinstance(c, dict)}
    if (conds.get("PodScheduled") or {}).get("reason") == "SchedulingGated":
        reason = "SchedulingGated"
    # sidecars (init containers with restartPolicy Always) count as containers of the pod
    sidecars = {c.get("name") for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"}
    total = len(spec.get("containers") or []) + len(sidecars)
    ready = restarts = sidecar_restarts = 0
    last_restart = sidecar_last_restart = ""
    initializing = False
    for i, cs in enumerate(st.get("initContainerStatuses") or []):
        restarts += cs.get("restartCount", 0)
        last = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt") or ""
        last_restart = max(last_restart, last)
        sidecar = cs.get("name") in sidecars
        if sidecar:
            sidecar_restarts += cs.get("restartCount", 0)
            sidecar_last_restart = max(sidecar_last_restart, last)
        state = cs.get("state") or {}
        if "terminated" in state and state["terminated"].get("exitCode") == 0:
            continue
        if sidecar and cs.get("started"):
            ready += 1 if cs.get("ready") else 0
            continue
        if "terminated" in state:
            reason = _terminated_reason(state["terminated"], "Init:")
        elif (state.get("waiting") or {}).get("reason") not in (None, "", "PodInitializing"):
            reason = "Init:" + state["waiting"]["reason"]
        else:
            reason = f"Init:{i}/{len(spec.get('initContainers') or [])}"
        initializing = True
        break
    if not initializing or (conds.get("Initialized") or {}).get("status") == "True":
        restarts, last_restart = sidecar_restarts, sidecar_last_restart
        has_running = False
        for cs in reversed(st.get("containerStatuses") or []):
            restarts += cs.get("restartCount", 0)
            last = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt") or ""
            last_restart = max(last_restart, last)
            state = cs.get("state") or {}
            if (state.get("waiting") or {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif "terminated" in state:
                reason = _terminated_reason(state["terminated"])
            elif cs.get("ready") and "running" in state:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if (conds.get("Ready") or {}).get("status") == "True" else "NotReady"
    if md.get("deletionTimestamp") and st.get("reason") == "NodeLost":
        reason = "Unknown"
    elif md.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    restarts_s = str(restarts)
    if restarts and last_restart:
        restarts_s = f"{restarts} ({age(last_restart)} ago)"
    gates = spec.get("readinessGates") or []
    if gates:
        conds = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
        ok = sum(1 for g in gates if conds.get(g.get("conditionType")) == "True")
        gates_s = f"{ok}/{len(gates)}"
    else:
        gates_s = "<none>"
    ips = st.get("podIPs") or []
    ip = (ips[0].get("ip") if ips and isinstance(ips[0], dict) else None) or st.get("podIP")
    return [md.get("name"), f"{ready}/{total}", reason, restarts_s, age(md.get("creationTimestamp")),
            _none(ip), _none(spec.get("nodeName")),
            _none(st.get("nominatedNodeName")), gates_s]


def _node_row(o: dict) -> list:
    md, st, spec = _md(o), _status(o), _spec(o)
    conds = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
    ready = conds.get("Ready")
    status = "Ready" if ready == "True" else ("NotReady" if ready == "False" else "Unknown")
    if spec.get("unschedulable"):
        status += ",SchedulingDisabled"
    roles = sorted(k.split("/", 1)[1] for k in (md.get("labels") or {})
                   if k.startswith("node-role.kubernetes.io/") and "/" in k)
    roles += sorted(v for k, v in (md.get("labels") or {}).items() if k == "kubernetes.io/role")
    info = st.get("nodeInfo") or {}
    addrs = st.get("addresses") or []
    internal = ",".join(a["address"] for a in addrs if a.get("type") == "InternalIP")
    external = ",".join(a["address"] for a in addrs if a.get("type") == "ExternalIP")
    return [md.get("name"), status, ",".join(roles) or "<none>", age(md.get("creationTimestamp")),
            info.get("kubeletVersion", ""), _none(internal), _none(external),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


def _svc_ports(spec: dict) -> str:
    out = []
    for p in spec.get("ports") or []:
        s = f"{p.get('port')}"
        if p.get("nodePort"):
            s += f":{p['nodePort']}"
        out.append(f"{s}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or "<none>"


def _svc_row(o: dict) -> list:
    md, spec, st = _md(o), _spec(o), _status(o)
    t = spec.get("type", "ClusterIP")
    ext = ",".join(i.get("ip") or i.get("hostname", "") for i in (st.get("loadBalancer") or {})
                   .get("ingress") or []) or ",".join(spec.get("externalIPs") or [])
    if t == "ExternalName":
        ext = spec.get("externalName", "")
    elif not ext:
        ext = "<pending>" if t == "LoadBalancer" else "<none>"
    sel = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
    return [md.get("name"), t, spec.get("clusterIP") or "<none>", ext, _svc_ports(spec),
            age(md.get("creationTimestamp")), sel or "<none>"]


def _endpoints_row(o: dict) -> list:
    eps = []
    for s in o.get("subsets") or []:
        ports = s.get("ports") or [{}]
        for a in s.get("addresses") or []:
            for p in ports:
                eps.append(f"{a.get('ip')}:{p['port']}" if p.get("port") else a.get("ip"))
    text = ",".join(eps[:3]) + (f" + {len(eps) - 3} more..." if len(eps) > 3 else "")
    return [_md(o).get("name"), text or "<none>", age(_md(o).get("creationTimestamp"))]


def _slice_row(o: dict) -> list:
    ports = ",".join(str(p.get("port")) for p in o.get("ports") or []) or "<unset>"
    addrs = [a for e in o.get("endpoints") or [] for a in e.get("addresses") or []]
    text = ",".join(addrs[:3]) + (f" + {len(addrs) - 3} more..." if len(addrs) > 3 else "")
    return [_md(o).get("name"), o.get("addressType", ""), ports, text or "<unset>",
            age(_md(o).get("creationTimestamp"))]


def _event_row(o: dict) -> list:
    md = _md(o)
    inv = o.get("involvedObject") or {}
    last = o.get("lastTimestamp") or o.get("eventTime") or md.get("creationTimestamp")
    first = o.get("firstTimestamp") or o.get("eventTime") or md.get("creationTimestamp")
    src = o.get("source") or {}
    source = src.get("component", "") + (", " + src["host"] if src.get("host") else "")
    return [age(last), o.get("type", ""), o.get("reason", ""),
            f"{(inv.get('kind') or '').lower()}/{inv.get('name', '')}", inv.get("fieldPath", ""),
            source or o.get("reportingComponent", ""), o.get("message", ""), age(first),
            o.get("count") or 1, md.get("name")]


def _deploy_row(o: dict) -> list:
    md, spec, st = _md(o), _spec(o), _status(o)
    c, i = _images(spec)
    return [md.get("name"), f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
            st.get("updatedReplicas", 0), st.get("availableReplicas", 0),
            age(md.get("creationTimestamp")), c, i, selector_string(spec.get("selector")) or "<none>"]


def _rs_row(o: dict) -> list:
    md, spec, st = _md(o), _spec(o), _status(o)
    c, i = _images(spec)
    return [md.get("name"), spec.get("replicas", 0), st.get("replicas", 0),
            st.get("readyReplicas", 0), age(md.get("creationTimestamp")), c, i,
            selector_string(spec.get("selector")) or "<none>"]


def _ds_row(o: dict) -> list:
    md, spec, st = _md(o), _spec(o), _status(o)
    c, i = _images(spec)
    ns = ",".join(f"{k}={v}" for k, v in sorted((((spec.get("template") or {}).get("spec") or {})
                                                .get("nodeSelector") or {}).items()))
    return [md.get("name"), st.get("desiredNumberScheduled", 0), st.get("currentNumberScheduled", 0),
            st.get("numberReady", 0), st.get("updatedNumberScheduled", 0),
            st.get("numberAvailable", 0), ns or "<none>", age(md.get("creationTimestamp")), c, i,
            selector_string(spec.get("selector")) or "<none>"]


def _duration(start: str | None, end: str | None) -> str:
    a, b = meta.parse_time(start or ""), meta.parse_time(end or "")
    if a is None:
        return ""
    b = b or _dt.datetime.now(_dt.timezone.utc)
    return human_duration((b - a).total_seconds())


def _job_status(o: dict) -> str:
    """The STATUS column of `kubectl get jobs` (printJob): the last condition that is True."""
    conds = {c.get("type"): c.get("status") for c in _status(o).get("conditions") or []}
    for t, word in (("Failed", "Failed"), ("Complete", "Complete"), ("Suspended", "Suspended"),
                    ("FailureTarget", "FailureTarget"), ("SuccessCriteriaMet", "SuccessCriteriaMet")):
        if conds.get(t) == "True":
            return word
    return "Terminating" if _md(o).get("deletionTimestamp") else "Running"


def _job_row(o: dict) -> list:
    md, spec, st = _md(o), _spec(o), _status(o)
    completions = spec.get("completions")
    if completions is not None:
        done = f"{st.get('succeeded', 0)}/{completions}"
    else:
        done = f"{st.get('succeeded', 0)}/1 of {spec.get('parallelism', 1)}" \
            if spec.get("parallelism", 1) > 1 else f"{st.get('succeeded', 0)}/1"
    c, i = _images(spec)
    return [md.get("name"), _job_status(o), done,
            _duration(st.get("startTime"), st.get("completionTime")) if st.get("startTime") else "",
            age(md.get("creationTimestamp")), c, i, selector_string(spec.get("selector")) or "<none>"]


def _cronjob_row(o: dict) -> list:
    md, spec, st = _md(o), _spec(o), _status(o)
    c, i = _images((spec.get("jobTemplate") or {}).get("spec") or {})
    last = st.get("lastScheduleTime")
    return [md.get("name"), spec.get("schedule", ""), spec.get("timeZone") or "<none>",
            bool(spec.get("suspend")), len(st.get("active") or []),
            age(last) if last else "<none>", age(md.get("creationTimestamp")), c, i,
            selector_string(((spec.get("jobTemplate") or {}).get("spec") or {}).get("selector")) or "<none>"]


def _sts_row(o: dict) -> list:
    md, spec, st = _md(o), _spec(o), _status(o)
    c, i = _images(spec)
    return [md.get("name"), f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
            age(md.get("creationTimestamp")), c, i]


def _rc_row(o: dict) -> list:
    md, spec, st = _md(o), _spec(o), _status(o)
    c, i = _images(spec)
    sel = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
    return [md.get("name"), spec.get("replicas", 0), st.get("replicas", 0), st.get("readyReplicas", 0),
            age(md.get("creationTimestamp")), c, i, sel or "<none>"]


_MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}


def _modes(modes) -> str:
    return ",".join(_MODES.get(m, m) for m in modes or [])


def _storage_class(o: dict) -> str:
    return _spec(o).get("storageClassName") or \
        (_md(o).get("annotations") or {}).get("volume.beta.kubernetes.io/storage-class", "")


def _pv_row(o: dict) -> list:
    md, spec, st = _md(o), _spec(o), _status(o)
    ref = spec.get("claimRef") or {}
    claim = f"{ref['namespace']}/{ref['name']}" if ref.get("name") else ""
    phase = st.get("phase", "")
    if md.get("deletionTimestamp"):
        phase = "Terminating"
    return [md.get("name"), (spec.get("capacity") or {}).get("storage", ""),
            _modes(spec.get("accessModes")), spec.get("persistentVolumeReclaimPolicy", ""), phase,
            claim, _storage_class(o), spec.get("volumeAttributesClassName") or "<unset>",
            st.get("reason", ""), age(md.get("creationTimestamp")), spec.get("volumeMode", "")]


def _pvc_row(o: dict) -> list:
    md, spec, st = _md(o), _spec(o), _status(o)
    phase = "Terminating" if md.get("deletionTimestamp") else st.get("phase", "")
    bound = phase == "Bound"
    return [md.get("name"), phase, spec.get("volumeName", ""),
            (st.get("capacity") or {}).get("storage", "") if bound else "",
            _modes(st.get("accessModes")) if bound else "", _storage_class(o),
            spec.get("volumeAttributesClassName") or "<unset>", age(md.get("creationTimestamp")),
            spec.get("volumeMode", "")]


def _pdb_row(o: dict) -> list:
    md, spec, st = _md(o), _spec(o), _status(o)
    return [md.get("name"), str(spec["minAvailable"]) if spec.get("minAvailable") is not None else "N/A",
            str(spec["maxUnavailable"]) if spec.get("maxUnavailable") is not None else "N/A",
            st.get("disruptionsAllowed", 0), age(md.get("creationTimestamp"))]


def _revision_row(o: dict) -> list:
    md = _md(o)
    owner = next((r for r in md.get("ownerReferences") or [] if r.get("controller")), None)
    ctl = "<none>"
    if owner:
        group = owner.get("apiVersion", "").split("/")[0] if "/" in owner.get("apiVersion", "") else ""
        ctl = f"{owner.get('kind', '').lower()}{'.' + group if group else ''}/{owner.get('name')}"
    return [md.get("name"), ctl, o.get("revision", 0), age(md.get("creationTimestamp"))]


def _quota_row(o: dict) -> list:
    st = _status(o)
    hard, used = st.get("hard") or {}, st.get("used") or {}
    req = ", ".join(f"{k}: {used.get(k, 0)}/{v}" for k, v in sorted(hard.items()) if not k.startswith("limits."))
    lim = ", ".join(f"{k}: {used.get(k, 0)}/{v}" for k, v in sorted(hard.items()) if k.startswith("limits."))
    return [_md(o).get("name"), age(_md(o).get("creationTimestamp")), req, lim]


def _podtemplate_row(o: dict) -> list:
    tmpl = o.get("template") or {}
    cs = (tmpl.get("spec") or {}).get("containers") or []
    labels = ",".join(f"{k}={v}" for k, v in sorted(((tmpl.get("metadata") or {}).get("labels") or {}).items()))
    return [_md(o).get("name"), ",".join(c.get("name", "") for c in cs),
            ",".join(c.get("image", "") for c in cs), labels or "<none>"]


def _ingress_row(o: dict) -> list:
    md, spec, st = _md(o), _spec(o), _status(o)
    hosts = ",".join(r.get("host") or "*" for r in spec.get("rules") or []) or "*"
    addr = ",".join(i.get("ip") or i.get("hostname", "") for i in (st.get("loadBalancer") or {})
                    .get("ingress") or [])
    ports = "80, 443" if spec.get("tls") else "80"
    return [md.get("name"), spec.get("ingressClassName") or "<none>", hosts, addr, ports,
            age(md.get("creationTimestamp"))]


def _ingressclass_row(o: dict) -> list:
    spec = _spec(o)
    p = spec.get("parameters")
    params = "<none>"
    if p:
        params = p.get("kind", "") + ("." + p["apiGroup"] if p.get("apiGroup") else "") + "/" + p.get("name", "")
    return [_md(o).get("name"), spec.get("controller", ""), params, age(_md(o).get("creationTimestamp"))]


def _sc_row(o: dict) -> list:
    md = _md(o)
    name = md.get("name", "")
    ann = md.get("annotations") or {}
    if "true" in (ann.get("storageclass.kubernetes.io/is-default-class"),
                  ann.get("storageclass.beta.kubernetes.io/is-default-class")):
        name += " (default)"
    return [name, o.get("provisioner", ""), o.get("reclaimPolicy", "Delete"),
            o.get("volumeBindingMode", "Immediate"), bool(o.get("allowVolumeExpansion")),
            age(md.get("creationTimestamp"))]


def _csidriver_row(o: dict) -> list:
    spec = _spec(o)
    tokens = ",".join(t.get("audience", "") or "<unknown>" for t in spec.get("tokenRequests") or []) or "<unset>"
    return [_md(o).get("name"), bool(spec.get("attachRequired", True)), bool(spec.get("podInfoOnMount")),
            bool(spec.get("storageCapacity")), tokens, bool(spec.get("requiresRepublish")),
            ",".join(spec.get("volumeLifecycleModes") or []), age(_md(o).get("creationTimestamp"))]


def _va_row(o: dict) -> list:
    spec = _spec(o)
    return [_md(o).get("name"), spec.get("attacher", ""),
            (spec.get("source") or {}).get("persistentVolumeName", ""), spec.get("nodeName", ""),
            bool(_status(o).get("attached")), age(_md(o).get("creationTimestamp"))]


def _binding_row(o: dict) -> list:
    ref = o.get("roleRef") or {}
    subjects = o.get("subjects") or []
    pick = lambda kind: ", ".join(s.get("name", "") for s in subjects if s.get("kind") == kind)
    sas = ", ".join(f"{s.get('namespace', '')}/{s.get('name', '')}" for s in subjects
                    if s.get("kind") == "ServiceAccount")
    return [_md(o).get("name"), f"{ref.get('kind', '')}/{ref.get('name', '')}",
            age(_md(o).get("creationTimestamp")), pick("User"), pick("Group"), sas]


def _hpa_target(m: dict, current: dict | None) -> str:
    t = m.get("type")
    if t == "Resource" or t == "ContainerResource":
        key = "resource" if t == "Resource" else "containerResource"
        r = m.get(key) or {}
        target = r.get("target") or {}
        cur = ((current or {}).get(key) or {}).get("current") or {}
        if target.get("averageUtilization") is not None:
            got = f"{cur['averageUtilization']}%" if cur.get("averageUtilization") is not None else "<unknown>"
            return f"{r.get('name')}: {got}/{target['averageUtilization']}%"
        want = target.get("averageValue") or target.get("value") or ""
        got = cur.get("averageValue") or cur.get("value") or "<unknown>"
        return f"{r.get('name')}: {got}/{want}"
    return f"<unknown>/<unknown>"


def _hpa_row(o: dict) -> list:
    md, spec, st = _md(o), _spec(o), _status(o)
    ref = spec.get("scaleTargetRef") or {}
    metrics = spec.get("metrics") or []
    current = st.get("currentMetrics") or []
    targets = [_hpa_target(m, current[i] if i < len(current) else None) for i, m in enumerate(metrics)]
    text = ", ".join(targets[:2]) + (f" + {len(targets) - 2} more..." if len(targets) > 2 else "")
    return [md.get("name"), f"{ref.get('kind', '')}/{ref.get('name', '')}", text or "<none>",
            spec.get("minReplicas", 1), spec.get("maxReplicas", 0), st.get("currentReplicas", 0),
            age(md.get("creationTimestamp"))]


def _created_at(o: dict) -> list:
    return [_md(o).get("name"), _md(o).get("creationTimestamp", "")]


def _s(name, prio=0, typ="string", desc=""):
    return (name, typ, desc, prio)


TABLES: dict[str, tuple[list[Column], Callable[[dict], list]]] = {
    "Pod": ([NAME, _s("Ready"), _s("Status"), _s("Restarts", typ="string"), AGE, _s("IP", 1),
             _s("Node", 1), _s("Nominated Node", 1), _s("Readiness Gates", 1)], _pod_row),
    "Node": ([NAME, _s("Status"), _s("Roles"), AGE, _s("Version"), _s("Internal-IP", 1),
              _s("External-IP", 1), _s("OS-Image", 1), _s("Kernel-Version", 1),
              _s("Container-Runtime", 1)], _node_row),
    "Namespace": ([NAME, _s("Status"), AGE],
                  lambda o: [_md(o).get("name"), _status(o).get("phase", ""),
                             age(_md(o).get("creationTimestamp"))]),
    "Service": ([NAME, _s("Type"), _s("Cluster-IP"), _s("External-IP"), _s("Port(s)"), AGE,
                 _s("Selector", 1)], _svc_row),
    "Endpoints": ([NAME, _s("Endpoints"), AGE], _endpoints_row),
    "ConfigMap": ([NAME, _s("Data", typ="integer"), AGE],
                  lambda o: [_md(o).get("name"), len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                             age(_md(o).get("creationTimestamp"))]),
    "Secret": ([NAME, _s("Type"), _s("Data", typ="integer"), AGE],
               lambda o: [_md(o).get("name"), o.get("type", ""), len(o.get("data") or {}),
                          age(_md(o).get("creationTimestamp"))]),
    "ServiceAccount": ([NAME, _s("Secrets", typ="integer"), AGE],
                       lambda o: [_md(o).get("name"), len(o.get("secrets") or []),
                                  age(_md(o).get("creationTimestamp"))]),
    "Event": ([_s("Last Seen"), _s("Type"), _s("Reason"), _s("Object"), _s("Subobject", 1),
               _s("Source", 1), _s("Message"), _s("First Seen", 1), _s("Count", 1, "integer"),
               _s("Name", 1)], _event_row),
    "Deployment": ([NAME, _s("Ready"), _s("Up-to-date", typ="integer"), _s("Available", typ="integer"),
                    AGE, _s("Containers", 1), _s("Images", 1), _s("Selector", 1)], _deploy_row),
    "ReplicaSet": ([NAME, _s("Desired", typ="integer"), _s("Current", typ="integer"),
                    _s("Ready", typ="integer"), AGE, _s("Containers", 1), _s("Images", 1),
                    _s("Selector", 1)], _rs_row),
    "DaemonSet": ([NAME, _s("Desired", typ="integer"), _s("Current", typ="integer"),
                   _s("Ready", typ="integer"), _s("Up-to-date", typ="integer"),
                   _s("Available", typ="integer"), _s("Node Selector"), AGE, _s("Containers", 1),
                   _s("Images", 1), _s("Selector", 1)], _ds_row),
    "Lease": ([NAME, _s("Holder"), AGE],
              lambda o: [_md(o).get("name"), _spec(o).get("holderIdentity") or "",
                         age(_md(o).get("creationTimestamp"))]),
    "EndpointSlice": ([NAME, _s("AddressType"), _s("Ports"), _s("Endpoints"), AGE], _slice_row),
    "Job": ([NAME, _s("Status"), _s("Completions"), _s("Duration"), AGE, _s("Containers", 1),
             _s("Images", 1), _s("Selector", 1)], _job_row),
    "CronJob": ([NAME, _s("Schedule"), _s("Timezone"), _s("Suspend", typ="boolean"),
                 _s("Active", typ="integer"), _s("Last Schedule"), AGE, _s("Containers", 1),
                 _s("Images", 1), _s("Selector", 1)], _cronjob_row),
    "StatefulSet": ([NAME, _s("Ready"), AGE, _s("Containers", 1), _s("Images", 1)], _sts_row),
    "ControllerRevision": ([NAME, _s("Controller"), _s("Revision", typ="integer"), AGE], _revision_row),
    "ReplicationController": ([NAME, _s("Desired", typ="integer"), _s("Current", typ="integer"),
                               _s("Ready", typ="integer"), AGE, _s("Containers", 1), _s("Images", 1),
                               _s("Selector", 1)], _rc_row),
    "PersistentVolume": ([NAME, _s("Capacity"), _s("Access Modes"), _s("Reclaim Policy"), _s("Status"),
                          _s("Claim"), _s("StorageClass"), _s("VolumeAttributesClass"), _s("Reason"),
                          AGE, _s("VolumeMode", 1)], _pv_row),
    "PersistentVolumeClaim": ([NAME, _s("Status"), _s("Volume"), _s("Capacity"), _s("Access Modes"),
                               _s("StorageClass"), _s("VolumeAttributesClass"), AGE,
                               _s("VolumeMode", 1)], _pvc_row),
    "PodDisruptionBudget": ([NAME, _s("Min Available"), _s("Max Unavailable"),
                             _s("Allowed Disruptions", typ="integer"), AGE], _pdb_row),
    "PriorityClass": ([NAME, _s("Value", typ="integer"), _s("Global-Default", typ="boolean"), AGE,
                       _s("PreemptionPolicy")],
                      lambda o: [_md(o).get("name"), o.get("value", 0), bool(o.get("globalDefault")),
                                 age(_md(o).get("creationTimestamp")), o.get("preemptionPolicy", "")]),
    "ResourceQuota": ([NAME, AGE, _s("Request"), _s("Limit")], _quota_row),
    "LimitRange": ([NAME, _s("Created At", desc="CreationTimestamp is a timestamp representing "
                             "the server time when this object was created.")],
                   lambda o: [_md(o).get("name"), _md(o).get("creationTimestamp", "")]),
    "PodTemplate": ([_s("Template"), _s("Containers"), _s("Images"), _s("Pod Labels")], _podtemplate_row),
    "Ingress": ([NAME, _s("Class"), _s("Hosts"), _s("Address"), _s("Ports"), AGE], _ingress_row),
    "IngressClass": ([NAME, _s("Controller"), _s("Parameters"), AGE], _ingressclass_row),
    "NetworkPolicy": ([NAME, _s("Pod-Selector"), AGE],
                      lambda o: [_md(o).get("name"), selector_string(_spec(o).get("podSelector")) or "<none>",
                                 age(_md(o).get("creationTimestamp"))]),
    "StorageClass": ([NAME, _s("Provisioner"), _s("ReclaimPolicy"), _s("VolumeBindingMode"),
                      _s("AllowVolumeExpansion", typ="boolean"), AGE], _sc_row),
    "CSIDriver": ([NAME, _s("AttachRequired", typ="boolean"), _s("PodInfoOnMount", typ="boolean"),
                   _s("StorageCapacity", typ="boolean"), _s("TokenRequests"),
                   _s("RequiresRepublish", typ="boolean"), _s("Modes"), AGE], _csidriver_row),
    "CSINode": ([NAME, _s("Drivers", typ="integer"), AGE],
                lambda o: [_md(o).get("name"), len(_spec(o).get("drivers") or []),
                           age(_md(o).get("creationTimestamp"))]),
    "VolumeAttachment": ([NAME, _s("Attacher"), _s("PV"), _s("Node"), _s("Attached", typ="boolean"), AGE],
                         _va_row),
    "CSIStorageCapacity": ([NAME, _s("StorageClassName"), _s("Capacity")],
                           lambda o: [_md(o).get("name"), o.get("storageClassName", ""),
                                      o.get("capacity") or "<unset>"]),
    "VolumeAttributesClass": ([NAME, _s("DriverName"), AGE],
                              lambda o: [_md(o).get("name"), o.get("driverName", ""),
                                         age(_md(o).get("creationTimestamp"))]),
    "Role": ([NAME, _s("Created At")], _created_at),
    "CustomResourceDefinition": ([NAME, _s("Created At")], _created_at),
    "ClusterRole": ([NAME, _s("Created At")], _created_at),
    "RoleBinding": ([NAME, _s("Role"), AGE, _s("Users", 1), _s("Groups", 1), _s("ServiceAccounts", 1)],
                    _binding_row),
    "ClusterRoleBinding": ([NAME, _s("Role"), AGE, _s("Users", 1), _s("Groups", 1),
                            _s("ServiceAccounts", 1)], _binding_row),
    "HorizontalPodAutoscaler": ([NAME, _s("Reference"), _s("Targets"), _s("MinPods", typ="integer"),
                                 _s("MaxPods", typ="integer"), _s("Replicas", typ="integer"), AGE],
                                _hpa_row),
    "ValidatingWebhookConfiguration": ([NAME, _s("Webhooks", typ="integer"), AGE],
                                       lambda o: [_md(o).get("name"), len(o.get("webhooks") or []),
                                                  age(_md(o).get("creationTimestamp"))]),
    "MutatingWebhookConfiguration": ([NAME, _s("Webhooks", typ="integer"), AGE],
                                     lambda o: [_md(o).get("name"), len(o.get("webhooks") or []),
                                                age(_md(o).get("creationTimestamp"))]),
    "ValidatingAdmissionPolicy": ([NAME, _s("Validations", typ="integer"), _s("ParamKind"), AGE],
                                  lambda o: [_md(o).get("name"), len(_spec(o).get("validations") or []),
                                             _param_kind(_spec(o).get("paramKind")),
                                             age(_md(o).get("creationTimestamp"))]),
    "ValidatingAdmissionPolicyBinding": ([NAME, _s("PolicyName"), _s("ParamRef"), AGE],
                                         lambda o: [_md(o).get("name"), _spec(o).get("policyName", ""),
                                                    _param_ref(_spec(o).get("paramRef")),
                                                    age(_md(o).get("creationTimestamp"))]),
    "RuntimeClass": ([NAME, _s("Handler"), AGE],
                     lambda o: [_md(o).get("name"), o.get("handler", ""), age(_md(o).get("creationTimestamp"))]),
}


def _param_kind(p: dict | None) -> str:
    return f"{p.get('apiVersion', '')}/{p.get('kind', '')}" if p else "<unset>"


def _param_ref(p: dict | None) -> str:
    if not p:
        return "<unset>"
    return f"{p.get('namespace', '')}/{p.get('name', '')}" if p.get("namespace") else \
        (p.get("name") or "*/*")

DEFAULT = ([NAME, AGE], lambda o: [_md(o).get("name"), age(_md(o).get("creationTimestamp"))])


def partial_metadata(obj: dict) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata") or {}}


def column_definitions(kind: str) -> list[dict]:
    cols, _ = TABLES.get(kind, DEFAULT)
    return [{"name": n, "type": t, "format": "name" if n == "Name" else "", "description": d,
             "priority": p} for n, t, d, p in cols]


def row(kind: str, obj: dict, include_object: str = "Metadata") -> dict:
    _, fn = TABLES.get(kind, DEFAULT)
    r: dict[str, Any] = {"cells": fn(obj)}
    if kind == "Pod" and _status(obj).get("phase") in ("Succeeded", "Failed"):
        # printPod marks finished pods' rows Completed (podSuccessConditions/podFailedConditions)
        phase = _status(obj)["phase"]
        r["conditions"] = [{"type": "Completed", "status": "True", "reason": phase, "message":
                            "The pod has completed successfully." if phase == "Succeeded"
                            else "The pod failed."}]
    if include_object == "Object":
        r["object"] = obj
    elif include_object != "None":
        r["object"] = partial_metadata(obj)
    return r


def for_resource(rt, objs: list[dict], list_meta: dict, include_object: str = "Metadata",
                 headers: bool = True) -> dict:
    """The Table of objects of resource rt: a custom resource's columns come from its CRD."""
    if rt.custom is not None:
        return rt.custom.table(objs, list_meta, include_object, headers)
    return table(rt.kind, objs, list_meta, include_object, headers)


def table(kind: str, objs: list[dict], list_meta: dict, include_object: str = "Metadata",
          headers: bool = True) -> dict:
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "columnDefinitions": column_definitions(kind) if headers else [],
            "rows": [row(kind, o, include_object) for o in objs]}
