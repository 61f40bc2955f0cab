"""Resources served in one shape and stored in another: events.k8s.io/v1 Events, autoscaling/v1
HorizontalPodAutoscalers.

A cluster keeps one copy of each Event, whichever API wrote it: kube-apiserver stores
events.k8s.io/v1 Events and core v1 Events under the same keys (/registry/events/<ns>/<name>)
and converts between the two shapes on the way in and out. The newer API renames and regroups
fields (pkg/apis/events/v1/conversion.go):

    events.k8s.io/v1               core/v1
    regarding                      involvedObject
    note                           message
    reportingController            reportingComponent
    deprecatedSource               source
    deprecatedFirstTimestamp       firstTimestamp
    deprecatedLastTimestamp        lastTimestamp
    deprecatedCount                count
    (eventTime, series, related, reportingInstance, action, reason, type: same names)

We store the core v1 shape; a ResourceType with `storage_plural` set is a view on another
resource's objects, and this module converts to and from it. Writes through the newer API are
held to its stricter rules (ValidateEventCreate for events.k8s.io/v1).

HorizontalPodAutoscalers are stored as autoscaling/v2; autoscaling/v1 knows only a CPU
utilization target (`spec.targetCPUUtilizationPercentage`) and its current value. What v1 cannot
say — other metrics, behavior, conditions — travels in annotations so that a v1 client's
read-modify-write keeps it, as upstream does (autoscaling.alpha.kubernetes.io/metrics, /behavior,
/conditions, /current-metrics; here their values are the v2 JSON of those fields).
"""

from __future__ import annotations

import json
import weakref

from controlplane.apiserver.errors import FieldError, forbidden_field, invalid, not_supported, required
from controlplane.apiserver.resources import ResourceType
from controlplane.storage.watchcache import Entry

# events.k8s.io/v1 name → core/v1 name, for the fields that differ.
_EVENT_FIELDS = {"regarding": "involvedObject", "note": "message",
                 "reportingController": "reportingComponent", "deprecatedSource": "source",
                 "deprecatedFirstTimestamp": "firstTimestamp",
                 "deprecatedLastTimestamp": "lastTimestamp", "deprecatedCount": "count"}
_EVENT_FIELDS_BACK = {v: k for k, v in _EVENT_FIELDS.items()}
_SAME = ("metadata", "eventTime", "series", "related", "reportingInstance", "action", "reason", "type")


def converts(rt: ResourceType) -> bool:
    if rt.custom is not None:  # custom resources: other versions stored, schema defaults
        return rt.custom.converts
    return bool(rt.storage_plural)


# ---- autoscaling/v1 <-> v2 ----

_ANN = "autoscaling.alpha.kubernetes.io/"


def _is_cpu_utilization(m: dict) -> bool:
    r = m.get("resource") or {}
    return m.get("type") == "Resource" and r.get("name") == "cpu" and \
        (r.get("target") or {}).get("type") == "Utilization"


def _hpa_to_v2(obj: dict, api_version: str) -> dict:
    out = {k: v for k, v in obj.items() if k not in ("spec", "status")}
    out["apiVersion"] = api_version
    md = dict(obj.get("metadata") or {})
    ann = dict(md.get("annotations") or {})
    spec = dict(obj.get("spec") or {})
    pct = spec.pop("targetCPUUtilizationPercentage", None)
    metrics = [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": pct}}}] if pct is not None else []
    metrics += _json(ann.pop(_ANN + "metrics", None)) or []
    if metrics:
        spec["metrics"] = metrics
    behavior = _json(ann.pop(_ANN + "behavior", None))
    if behavior:
        spec["behavior"] = behavior
    out["spec"] = spec
    if "status" in obj:
        status = dict(obj.get("status") or {})
        cur = status.pop("currentCPUUtilizationPercentage", None)
        current = [{"type": "Resource", "resource": {"name": "cpu", "current": {
            "averageUtilization": cur}}}] if cur is not None else []
        current += _json(ann.pop(_ANN + "current-metrics", None)) or []
        if current:
            status["currentMetrics"] = current
        conditions = _json(ann.pop(_ANN + "conditions", None))
        if conditions:
            status["conditions"] = conditions
        out["status"] = status
    for k in ("metrics", "behavior", "current-metrics", "conditions"):
        ann.pop(_ANN + k, None)
    if ann:
        md["annotations"] = ann
    else:
        md.pop("annotations", None)
    out["metadata"] = md
    return out


def _hpa_to_v1(obj: dict, api_version: str) -> dict:
    out = {k: v for k, v in obj.items() if k not in ("spec", "status")}
    out["apiVersion"] = api_version
    md = dict(obj.get("metadata") or {})
    ann = dict(md.get("annotations") or {})
    spec = dict(obj.get("spec") or {})
    metrics = spec.pop("metrics", None) or []
    cpu = next((m for m in metrics if _is_cpu_utilization(m)), None)
    if cpu is not None:
        spec["targetCPUUtilizationPercentage"] = cpu["resource"]["target"].get("averageUtilization")
    others = [m for m in metrics if m is not cpu]
    if others:
        ann[_ANN + "metrics"] = json.dumps(others, separators=(",", ":"))
    if spec.get("behavior"):
        ann[_ANN + "behavior"] = json.dumps(spec.pop("behavior"), separators=(",", ":"))
    out["spec"] = spec
    if "status" in obj:
        status = dict(obj.get("status") or {})
        status.setdefault("currentReplicas", 0)  # v1 writes these even when zero (no omitempty)
        status.setdefault("desiredReplicas", 0)
        current = status.pop("currentMetrics", None) or []
        cur = next((m for m in current if m.get("type") == "Resource" and
                    (m.get("resource") or {}).get("name") == "cpu"), None)
        if cur is not None and (cur["resource"].get("current") or {}).get("averageUtilization") is not None:
            status["currentCPUUtilizationPercentage"] = cur["resource"]["current"]["averageUtilization"]
        rest = [m for m in current if m is not cur]
        if rest:
            ann[_ANN + "current-metrics"] = json.dumps(rest, separators=(",", ":"))
        if status.get("conditions"):
            ann[_ANN + "conditions"] = json.dumps(status.pop("conditions"), separators=(",", ":"))
        out["status"] = status
    if ann:
        md["annotations"] = ann
    out["metadata"] = md
    return out


def _json(text):
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _rename(obj: dict, names: dict, api_version: str) -> dict:
    out: dict = {"apiVersion": api_version, "kind": obj.get("kind", "Event")}
    for k, v in obj.items():
        if k in ("apiVersion", "kind"):
            continue
        if k in names:
            out[names[k]] = v
        elif k in _SAME:
            out[k] = v
    return out


def to_storage(rt: ResourceType, obj):
    """The object a client sent (in rt's shape) as it is stored."""
    if rt.custom is not None:
        return rt.custom.to_storage(obj)
    if not converts(rt) or not isinstance(obj, dict):
        return obj
    if rt.kind == "HorizontalPodAutoscaler":
        return _hpa_to_v2(obj, rt.stored_api_version)
    return _rename(obj, _EVENT_FIELDS, rt.stored_api_version)


def from_storage(rt: ResourceType, obj: dict) -> dict:
    """A stored object as rt's clients see it."""
    if not converts(rt):
        return obj
    if rt.custom is not None:
        return rt.custom.from_storage(obj)
    if rt.kind == "HorizontalPodAutoscaler":
        return _hpa_to_v1(obj, rt.api_version)
    out = _rename(obj, _EVENT_FIELDS_BACK, rt.api_version)
    out.setdefault("eventTime", None)  # a MicroTime, not a pointer: Go writes its zero as null
    return out


# Each cache entry's JSON in the shapes it was read in (a LIST of 5,000 custom resources read
# through a version with schema defaults converts each object once, not once per LIST). Keyed
# by the view: its apiVersion and, for custom resources, the CRD version object (a new schema
# is a new object). Entries are immutable, so a memo never goes stale; it dies with its entry.
_VIEWS: "weakref.WeakKeyDictionary[Entry, dict]" = weakref.WeakKeyDictionary()


def encoded_view(rt: ResourceType, entry: Entry) -> bytes:
    """The JSON of a stored object as rt's clients see it, memoized per entry."""
    views = _VIEWS.get(entry)
    if views is None:
        views = _VIEWS[entry] = {}
    key = (rt.api_version, rt.custom)
    body = views.get(key)
    if body is None:
        body = views[key] = json.dumps(from_storage(rt, entry.obj), separators=(",", ":")).encode()
    return body


def validate_create(rt: ResourceType, obj: dict) -> list[FieldError]:
    """events.k8s.io/v1's rules for a new Event (in its own field names)."""
    if not converts(rt) or rt.kind != "Event":
        return []
    errs: list[FieldError] = []
    if not obj.get("eventTime"):
        errs.append(required("eventTime"))
    if obj.get("type") not in ("Normal", "Warning"):
        errs.append(not_supported("type", obj.get("type", ""), ["Normal", "Warning"]))
    for f in ("deprecatedFirstTimestamp", "deprecatedLastTimestamp"):
        if obj.get(f):
            errs.append(forbidden_field(f, "needs to be unset"))
    if obj.get("deprecatedCount"):
        errs.append(forbidden_field("deprecatedCount", "needs to be unset"))
    if obj.get("deprecatedSource"):
        errs.append(forbidden_field("deprecatedSource", "needs to be unset"))
    for f in ("reportingController", "reportingInstance", "action", "reason"):
        v = obj.get(f)
        if not v:
            errs.append(required(f))
        elif len(v) > 128:
            errs.append(invalid(f, v, "can have at most 128 characters"))
    if len(obj.get("note") or "") > 1024:
        errs.append(invalid("note", "", "can have at most 1024 characters"))
    series = obj.get("series")
    if series is not None:
        if (series.get("count") or 0) < 2:
            errs.append(invalid("series.count", series.get("count"), "should be at least 2"))
        if not series.get("lastObservedTime"):
            errs.append(required("series.lastObservedTime"))
    return errs
