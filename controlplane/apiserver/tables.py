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


def _pod_row(o: dict) -> list:
    spec, st, md = _spec(o), _status(o), _md(o)
    total = len(spec.get("containers") or [])
    ready = restarts = 0
    reason = st.get("reason") or st.get("phase") or "Pending"
    last_restart = None
    for i, cs in enumerate(st.get("initContainerStatuses") or []):
        restarts += cs.get("restartCount", 0)
        state = cs.get("state") or {}
        if "terminated" in state and state["terminated"].get("exitCode") == 0:
            continue
        if "terminated" in state:
            t = state["terminated"]
            reason = "Init:" + (t.get("reason") or (f"Signal:{t['signal']}" if t.get("signal")
                                                   else f"ExitCode:{t.get('exitCode')}"))
        elif "waiting" in state and state["waiting"].get("reason") not in (None, "", "PodInitializing"):
            reason = "Init:" + state["waiting"]["reason"]
        else:
            reason = f"Init:{i}/{len(spec.get('initContainers') or [])}"
        break
    else:
        has_running = False
        for cs in reversed(st.get("containerStatuses") or []):
            restarts += cs.get("restartCount", 0)
            state = cs.get("state") or {}
            last = (cs.get("lastState") or {}).get("terminated")
            if last and last.get("finishedAt"):
                last_restart = max(last_restart or "", last["finishedAt"])
            if (state.get("waiting") or {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif "terminated" in state:
                t = state["terminated"]
                reason = t.get("reason") or (f"Signal:{t['signal']}" if t.get("signal")
                                             else f"ExitCode:{t.get('exitCode')}")
            elif "running" in state and cs.get("ready"):
                has_running = True
                ready += 1
            elif "running" in state:
                has_running = True
        if reason == "Completed" and has_running:
            conds = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
            reason = "Running" if conds.get("Ready") == "True" else "NotReady"
    if md.get("deletionTimestamp"):
        reason = "Unknown" if st.get("reason") == "NodeLost" else "Terminating"
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
    return [md.get("name"), f"{ready}/{total}", reason, restarts_s, age(md.get("creationTimestamp")),
            _none(st.get("podIP")), _none(spec.get("nodeName")),
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
}

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
    if include_object == "Object":
        r["object"] = obj
    elif include_object != "None":
        r["object"] = partial_metadata(obj)
    return r


def table(kind: str, objs: list[dict], list_meta: dict, include_object: str = "Metadata",
          headers: bool = True) -> dict:
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "columnDefinitions": column_definitions(kind) if headers else [],
            "rows": [row(kind, o, include_object) for o in objs]}
