"""Small shared helpers on API objects: keys, label selectors, owner references, times, pod state.

These are the rules every controller applies the same way (client-go's `metav1` helpers and
`pkg/controller/controller_utils.go`), kept in one place so that, say, "is this pod ready" has one
answer.
"""

from __future__ import annotations

import copy
import time
from datetime import datetime, timezone

from apiclient import Resource

# Resources the API server may serve beyond apiclient's constants (batch and StatefulSets come
# with the API-correctness work; controllers that need them check discovery first).
CONTROLLERREVISIONS = Resource("apps", "v1", "controllerrevisions", True)
STATEFULSETS = Resource("apps", "v1", "statefulsets", True)
JOBS = Resource("batch", "v1", "jobs", True)
CRONJOBS = Resource("batch", "v1", "cronjobs", True)
PVCS = Resource("", "v1", "persistentvolumeclaims", True)


def key_of(obj: dict) -> str:
    md = obj.get("metadata") or {}
    ns = md.get("namespace")
    return f"{ns}/{md.get('name', '')}" if ns else md.get("name", "")


def split_key(key: str) -> tuple[str, str]:
    ns, _, name = key.rpartition("/")
    return ns, name


def deep(obj):
    return copy.deepcopy(obj)


# ---- time ----

def now_rfc3339(t: float | None = None) -> str:
    """metav1.Time: RFC 3339, second precision, UTC."""
    return datetime.fromtimestamp(time.time() if t is None else t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s: str | None) -> float | None:
    if not s:
        return None
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


# ---- label selectors (metav1.LabelSelector) ----

def selector_matches(selector: dict | None, labels: dict | None) -> bool:
    """matchLabels AND every matchExpression. An empty selector matches everything; a missing
    one (None) matches nothing, as LabelSelectorAsSelector does."""
    if selector is None:
        return False
    labels = labels or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        k, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(k) not in values:
            return False
        if op == "NotIn" and k in labels and labels[k] in values:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def selector_is_empty(selector: dict | None) -> bool:
    return selector is not None and not selector.get("matchLabels") and not selector.get("matchExpressions")


def labels_match(selector: dict, labels: dict | None) -> bool:
    """A plain map selector (Service.spec.selector, nodeSelector): every pair present."""
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


# ---- owner references ----

def controller_ref(obj: dict) -> dict | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def controller_key(obj: dict, kind: str, owners) -> str | None:
    """The queue key of obj's controller of `kind`, looked up in the `owners` informer — or None
    when obj has no such controller or the one named is gone or is another object of the same
    name (a different uid: the owner was deleted and re-created)."""
    ref = controller_ref(obj)
    if not ref or ref.get("kind") != kind:
        return None
    owner = owners.get(obj["metadata"].get("namespace", ""), ref.get("name", ""))
    if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
        return None
    return key_of(owner)


def owner_ref(owner: dict, *, controller: bool = True, block: bool = True) -> dict:
    md = owner["metadata"]
    return {"apiVersion": owner.get("apiVersion"), "kind": owner.get("kind"), "name": md["name"],
            "uid": md["uid"], "controller": controller, "blockOwnerDeletion": block}


def is_deleting(obj: dict) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


# ---- pods ----

def pod_condition(pod: dict, type_: str) -> dict | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None


def pod_ready(pod: dict) -> bool:
    c = pod_condition(pod, "Ready")
    return bool(c and c.get("status") == "True")


def pod_available(pod: dict, min_ready: int, now: float | None = None) -> bool:
    """Ready for at least minReadySeconds (podutil.IsPodAvailable)."""
    c = pod_condition(pod, "Ready")
    if not c or c.get("status") != "True":
        return False
    if not min_ready:
        return True
    t = parse_time(c.get("lastTransitionTime"))
    return t is not None and t + min_ready <= (time.time() if now is None else now)


def pod_terminal(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def pod_active(pod: dict) -> bool:
    """Counts toward a controller's replicas: not finished and not being deleted
    (controller.FilterActivePods)."""
    return not pod_terminal(pod) and not is_deleting(pod)


def pod_from_template(template: dict, owner: dict, generate_name: str) -> dict:
    """controller.GetPodFromTemplate: labels, annotations and finalizers from the template, a
    generateName prefix, and a controller ownerReference to the owner."""
    tmd = template.get("metadata") or {}
    md: dict = {"generateName": generate_name, "namespace": owner["metadata"]["namespace"],
                "ownerReferences": [owner_ref(owner)]}
    for f in ("labels", "annotations", "finalizers"):
        if tmd.get(f):
            md[f] = copy.deepcopy(tmd[f])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": copy.deepcopy(template.get("spec") or {})}


def set_condition(conditions: list[dict], cond: dict) -> list[dict]:
    """Replace the condition of the same type; keep lastTransitionTime if the status is unchanged."""
    out = []
    found = False
    for c in conditions:
        if c.get("type") == cond["type"]:
            found = True
            if c.get("status") == cond.get("status") and c.get("lastTransitionTime"):
                cond = {**cond, "lastTransitionTime": c["lastTransitionTime"]}
            out.append(cond)
        else:
            out.append(c)
    if not found:
        out.append(cond)
    return out
