"""Label and field selectors: `?labelSelector=app=web,tier in (fe,be),!canary&fieldSelector=...`.

Label selector grammar (k8s.io/apimachinery/pkg/labels): requirements joined by commas, each one of
    key = value   key == value   key != value   key in (a,b)   key notin (a,b)   key   !key
A `!=` or `notin` also matches objects that lack the label, as upstream.

Field selectors only know a few fields per kind (upstream: each kind's GetAttrs/field label
conversion); anything else is a 400 "field label not supported", never silently ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from controlplane.apiserver.errors import APIError, bad_request

_TOKEN = re.compile(r"\s*(!=|==|=|\(|\)|,|!|[^\s!=(),]+)")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # = != in notin exists !exists
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        if self.op == "exists":
            return has
        if self.op == "!exists":
            return not has
        if self.op in ("=", "in"):
            return has and labels[self.key] in self.values
        return not has or labels[self.key] not in self.values  # != and notin


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


def parse_label_selector(text: str | None) -> LabelSelector:
    if not text or not text.strip():
        return LabelSelector()
    tokens = _TOKEN.findall(text)
    if "".join(tokens) != re.sub(r"\s+", "", text):
        raise bad_request(f'unable to parse requirement: invalid label selector: "{text}"')
    reqs: list[Requirement] = []
    i = 0

    def fail(why: str) -> APIError:
        return bad_request(f"unable to parse requirement: {why} in label selector \"{text}\"")

    while i < len(tokens):
        if tokens[i] == "!":
            if i + 1 >= len(tokens):
                raise fail("missing key after '!'")
            reqs.append(Requirement(tokens[i + 1], "!exists"))
            i += 2
        else:
            key = tokens[i]
            i += 1
            if i < len(tokens) and tokens[i] in ("=", "==", "!="):
                op = "!=" if tokens[i] == "!=" else "="
                value = ""
                if i + 1 < len(tokens) and tokens[i + 1] != ",":
                    value = tokens[i + 1]
                    i += 2
                else:
                    i += 1
                reqs.append(Requirement(key, op, (value,)))
            elif i < len(tokens) and tokens[i] in ("in", "notin"):
                op = tokens[i]
                if i + 1 >= len(tokens) or tokens[i + 1] != "(":
                    raise fail(f"expected '(' after '{op}'")
                i += 2
                values = []
                while i < len(tokens) and tokens[i] != ")":
                    if tokens[i] != ",":
                        values.append(tokens[i])
                    i += 1
                if i >= len(tokens):
                    raise fail("missing ')'")
                i += 1
                reqs.append(Requirement(key, op, tuple(values)))
            else:
                reqs.append(Requirement(key, "exists"))
        if i < len(tokens):
            if tokens[i] != ",":
                raise fail(f"unexpected '{tokens[i]}'")
            i += 1
    return LabelSelector(tuple(reqs))


def selector_from_match(match: dict | None) -> LabelSelector:
    """A metav1.LabelSelector object (matchLabels + matchExpressions) as a LabelSelector."""
    match = match or {}
    reqs = [Requirement(k, "=", (v,)) for k, v in sorted((match.get("matchLabels") or {}).items())]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
    for e in match.get("matchExpressions") or []:
        reqs.append(Requirement(e.get("key", ""), ops.get(e.get("operator"), "in"),
                                tuple(e.get("values") or ())))
    return LabelSelector(tuple(reqs))


def selector_string(match: dict | None) -> str:
    """The text form kubectl shows (e.g. in the SELECTOR column)."""
    parts = []
    match = match or {}
    for k, v in sorted((match.get("matchLabels") or {}).items()):
        parts.append(f"{k}={v}")
    for e in match.get("matchExpressions") or []:
        op = e.get("operator")
        if op == "Exists":
            parts.append(e["key"])
        elif op == "DoesNotExist":
            parts.append("!" + e["key"])
        else:
            parts.append(f"{e['key']} {'in' if op == 'In' else 'notin'} ({','.join(e.get('values') or [])})")
    return ",".join(parts)


# ---- field selectors ----

def _get(obj: dict, *path: str) -> Any:
    for p in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(p)
    return obj


def _s(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


_COMMON: dict[str, Callable[[dict], Any]] = {
    "metadata.name": lambda o: _get(o, "metadata", "name"),
    "metadata.namespace": lambda o: _get(o, "metadata", "namespace"),
}

# kind → extra selectable fields (upstream: pkg/registry/*/strategy.go *GetAttrs / ToSelectableFields)
FIELDS: dict[str, dict[str, Callable[[dict], Any]]] = {
    "Pod": {
        "spec.nodeName": lambda o: _get(o, "spec", "nodeName"),
        "spec.restartPolicy": lambda o: _get(o, "spec", "restartPolicy"),
        "spec.schedulerName": lambda o: _get(o, "spec", "schedulerName"),
        "spec.serviceAccountName": lambda o: _get(o, "spec", "serviceAccountName"),
        "spec.hostNetwork": lambda o: bool(_get(o, "spec", "hostNetwork")),
        "status.phase": lambda o: _get(o, "status", "phase"),
        "status.podIP": lambda o: _get(o, "status", "podIP"),
        "status.nominatedNodeName": lambda o: _get(o, "status", "nominatedNodeName"),
    },
    "Event": {
        **{f"involvedObject.{f}": (lambda f: lambda o: _get(o, "involvedObject", f))(f)
           for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion",
                     "fieldPath")},
        "reason": lambda o: o.get("reason"),
        "reportingComponent": lambda o: o.get("reportingComponent"),
        "source": lambda o: _get(o, "source", "component"),
        "type": lambda o: o.get("type"),
    },
    "Service": {"spec.clusterIP": lambda o: _get(o, "spec", "clusterIP"),
                "spec.type": lambda o: _get(o, "spec", "type")},
    "Node": {"spec.unschedulable": lambda o: bool(_get(o, "spec", "unschedulable"))},
    "Namespace": {"status.phase": lambda o: _get(o, "status", "phase")},
    "Secret": {"type": lambda o: o.get("type")},
    "ReplicaSet": {"status.replicas": lambda o: _get(o, "status", "replicas") or 0},
    "ReplicationController": {"status.replicas": lambda o: _get(o, "status", "replicas") or 0},
    "Job": {"status.successful": lambda o: _get(o, "status", "succeeded") or 0},
}


@dataclass(frozen=True)
class FieldSelector:
    terms: tuple[tuple[str, str, str], ...] = ()  # (field, op "=" or "!=", value)
    kind: str = ""

    def matches(self, obj: dict) -> bool:
        for field, op, value in self.terms:
            getter = _COMMON.get(field) or FIELDS.get(self.kind, {}).get(field)
            actual = _s(getter(obj))
            if (actual == value) != (op == "="):
                return False
        return True

    def value_of(self, field: str) -> str | None:
        """The value an equality term pins `field` to (e.g. metadata.name for single-object
        watches), or None."""
        for f, op, v in self.terms:
            if f == field and op == "=":
                return v
        return None

    @property
    def empty(self) -> bool:
        return not self.terms


# events.k8s.io/v1 spells some Event fields differently (conversion.py); selectors on that API
# use its names, matched against the stored (core) ones.
_EVENTS_V1_LABELS = {"regarding": "involvedObject", "reportingController": "reportingComponent",
                     "deprecatedSource": "source"}


def field_selector_terms(text: str):
    """The `field op value` terms of a field selector's text, as written (op: =, == or !=);
    a term that is none of these is refused as upstream's parser refuses it."""
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        m = re.match(r"^([^!=]+)(==|!=|=)(.*)$", part)
        if not m:
            raise bad_request(f'invalid selector: \'{text}\'; can\'t understand \'{part}\'')
        yield m.group(1).strip(), m.group(2), m.group(3).strip()


def parse_field_selector(text: str | None, kind: str, api_version: str) -> FieldSelector:
    if not text or not text.strip():
        return FieldSelector((), kind)
    terms = []
    for field, op, value in field_selector_terms(text):
        if api_version == "events.k8s.io/v1":
            head, dot, rest = field.partition(".")
            field = _EVENTS_V1_LABELS.get(head, head) + dot + rest
        if (field not in _COMMON and field not in FIELDS.get(kind, {})) or \
                (field == "metadata.namespace" and kind in ("Node", "Namespace")):
            # Upstream's words differ by kind: kinds with their own field label conversion say
            # "field label not supported", the rest fall back to the metadata-only default.
            if kind in FIELDS:
                raise bad_request(f"field label not supported: {field}")
            raise bad_request(f'"{field}" is not a known field selector: only "metadata.name", '
                              f'"metadata.namespace"')
        terms.append((field, "!=" if op == "!=" else "=", value))
    return FieldSelector(tuple(terms), kind)
