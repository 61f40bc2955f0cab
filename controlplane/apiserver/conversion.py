"""Resources served in one shape and stored in another: events.k8s.io/v1 Events.

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
"""

from __future__ import annotations

from controlplane.apiserver.errors import FieldError, forbidden_field, invalid, not_supported, required
from controlplane.apiserver.resources import ResourceType

# events.k8s.io/v1 name → core/v1 name, for the fields that differ.
_EVENT_FIELDS = {"regarding": "involvedObject", "note": "message",
                 "reportingController": "reportingComponent", "deprecatedSource": "source",
                 "deprecatedFirstTimestamp": "firstTimestamp",
                 "deprecatedLastTimestamp": "lastTimestamp", "deprecatedCount": "count"}
_EVENT_FIELDS_BACK = {v: k for k, v in _EVENT_FIELDS.items()}
_SAME = ("metadata", "eventTime", "series", "related", "reportingInstance", "action", "reason", "type")


def converts(rt: ResourceType) -> bool:
    return bool(rt.storage_plural)


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
    if not converts(rt) or not isinstance(obj, dict):
        return obj
    return _rename(obj, _EVENT_FIELDS, rt.stored_api_version)


def from_storage(rt: ResourceType, obj: dict) -> dict:
    """A stored object as rt's clients see it."""
    if not converts(rt):
        return obj
    out = _rename(obj, _EVENT_FIELDS_BACK, rt.api_version)
    out.setdefault("eventTime", None)  # a MicroTime, not a pointer: Go writes its zero as null
    return out


def field_label(rt: ResourceType, label: str) -> str:
    """A field selector's label in the stored shape (`regarding.name` → `involvedObject.name`)."""
    if not converts(rt):
        return label
    head, _, rest = label.partition(".")
    if head in _EVENT_FIELDS:
        return _EVENT_FIELDS[head] + ("." + rest if rest else "")
    return label


def validate_create(rt: ResourceType, obj: dict) -> list[FieldError]:
    """events.k8s.io/v1's rules for a new Event (in its own field names)."""
    if not converts(rt):
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
