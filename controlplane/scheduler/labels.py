"""Selectors, compiled once per pod: label selectors (pods) and node selector terms (nodes).

Two grammars that look alike but are not the same (upstream keeps them apart too):

- a LabelSelector (`matchLabels` + `matchExpressions` with In, NotIn, Exists, DoesNotExist), used
  by pod affinity and topology spread to pick *pods*. An empty selector matches everything; a
  missing (None) one matches nothing.
- a NodeSelectorTerm (`matchExpressions` on labels, also Gt and Lt; `matchFields` on
  metadata.name), used by node affinity. Terms are ORed, requirements inside a term ANDed, and an
  empty term matches no node.

Compiling turns each into a tuple of small predicates so that checking 1,000 nodes or pods does
not walk the dicts again.
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.scheduler.errors import SchedulerError


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # In | NotIn | Exists | DoesNotExist | Gt | Lt
    values: frozenset[str]

    def matches(self, labels: dict) -> bool:
        op = self.op
        if op == "In":
            return labels.get(self.key) in self.values
        if op == "NotIn":
            return labels.get(self.key) not in self.values
        if op == "Exists":
            return self.key in labels
        if op == "DoesNotExist":
            return self.key not in labels
        v = labels.get(self.key)
        if v is None:
            return False
        try:
            have, want = int(v), int(next(iter(self.values)))
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want


_OPS = {"In", "NotIn", "Exists", "DoesNotExist"}


def _requirement(expr: dict, field: str, ops: set[str]) -> Requirement:
    op = expr.get("operator")
    if op not in ops:
        raise SchedulerError(f"{field}.operator: unsupported value {op!r}")
    return Requirement(str(expr.get("key", "")), op, frozenset(str(v) for v in expr.get("values") or ()))


@dataclass(frozen=True)
class LabelSelector:
    """A compiled metav1.LabelSelector; `nothing` is the None selector that matches no object."""

    reqs: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: dict) -> bool:
        if self.nothing:
            return False
        for r in self.reqs:
            if not r.matches(labels):
                return False
        return True


def label_selector(sel: dict | None, field: str = "labelSelector") -> LabelSelector:
    if sel is None:
        return LabelSelector(nothing=True)
    reqs = [Requirement(k, "In", frozenset([str(v)])) for k, v in (sel.get("matchLabels") or {}).items()]
    reqs += [_requirement(e, f"{field}.matchExpressions[{i}]", _OPS)
             for i, e in enumerate(sel.get("matchExpressions") or ())]
    return LabelSelector(tuple(reqs))


def with_label_keys(sel: LabelSelector, keys, labels: dict) -> LabelSelector:
    """matchLabelKeys: the pod's own values for those keys ANDed into the selector."""
    extra = tuple(Requirement(k, "In", frozenset([labels[k]])) for k in keys or () if k in labels)
    return sel if not extra or sel.nothing else LabelSelector(sel.reqs + extra)


@dataclass(frozen=True)
class NodeSelectorTerm:
    labels: tuple[Requirement, ...]
    fields: tuple[Requirement, ...]

    def matches(self, node_labels: dict, node_name: str) -> bool:
        if not self.labels and not self.fields:
            return False  # an empty term matches nothing (upstream: "nil or empty term matches no objects")
        for r in self.labels:
            if not r.matches(node_labels):
                return False
        for r in self.fields:
            if not r.matches({"metadata.name": node_name}):
                return False
        return True


def node_selector_term(term: dict, field: str) -> NodeSelectorTerm:
    ops = _OPS | {"Gt", "Lt"}
    labels = tuple(_requirement(e, f"{field}.matchExpressions[{i}]", ops)
                   for i, e in enumerate(term.get("matchExpressions") or ()))
    fields = tuple(_requirement(e, f"{field}.matchFields[{i}]", {"In", "NotIn"})
                   for i, e in enumerate(term.get("matchFields") or ()))
    for r in fields:
        if r.key != "metadata.name":
            raise SchedulerError(f"{field}.matchFields.key: only metadata.name is supported, got {r.key!r}")
    return NodeSelectorTerm(labels, fields)


def node_matches_terms(terms: tuple[NodeSelectorTerm, ...], node_labels: dict, node_name: str) -> bool:
    for t in terms:
        if t.matches(node_labels, node_name):
            return True
    return False
