"""PodInfo: everything the scheduler needs to know about a pod, parsed once from its dict.

A pod is read many times per scheduling cycle (once per node per plugin, and every pod already on
a node is read again by affinity and spread), so the dict is parsed here, at the edge, into a
frozen dataclass: requests summed as upstream's `resource.PodRequests` does, selectors compiled,
host ports and tolerations as tuples. `raw` keeps the dict for the writes back to the API.

Requests (upstream `PodRequests`): the sum of the containers' requests; a restartable init
container (a sidecar, restartPolicy Always) runs beside them and adds to the sum; an ordinary init
container runs alone (beside the sidecars started before it), so the pod needs the larger of the two;
`spec.overhead` (RuntimeClass) is added on top. Scoring uses "non-zero" requests: a container
that asks for no cpu or memory is counted as 100m and 200Mi, so empty pods still spread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from controlplane.scheduler import quantity
from controlplane.scheduler.labels import (
    LabelSelector, NodeSelectorTerm, label_selector, node_selector_term, with_label_keys)

DEFAULT_MILLI_CPU = 100  # upstream schedutil.DefaultMilliCPURequest
DEFAULT_MEMORY = 200 * 1024 * 1024  # upstream schedutil.DefaultMemoryRequest
SPREAD_OWNERS = ("ReplicaSet", "StatefulSet", "ReplicationController")
HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"


@dataclass(frozen=True)
class Toleration:
    key: str
    op: str  # Equal | Exists
    value: str
    effect: str  # "" tolerates every effect

    def tolerates(self, taint: dict) -> bool:
        """upstream v1.Toleration.ToleratesTaint."""
        if self.effect and self.effect != taint.get("effect"):
            return False
        if self.key and self.key != taint.get("key"):
            return False
        if self.op == "Exists":
            return True
        return self.value == (taint.get("value") or "")


def tolerated(tolerations: tuple[Toleration, ...], taint: dict) -> bool:
    for t in tolerations:
        if t.tolerates(taint):
            return True
    return False


@dataclass(frozen=True)
class AffinityTerm:
    """One pod (anti-)affinity term: pods matching `selector` in `namespaces` (None: all), or in
    a namespace whose labels match `ns_selector`. `ns_labels` is the scheduler's live view of
    the namespaces' labels (a reference, not a copy: a namespace relabelled later counts)."""

    selector: LabelSelector
    namespaces: frozenset[str] | None
    topology_key: str
    weight: int = 0  # preferred terms only
    ns_selector: LabelSelector | None = None
    ns_labels: Mapping[str, dict] = field(default_factory=dict, compare=False, repr=False)

    def matches(self, pod: "PodInfo") -> bool:
        if self.namespaces is not None and pod.namespace not in self.namespaces and not (
                self.ns_selector is not None and self.ns_selector.matches(self.ns_labels.get(pod.namespace) or {})):
            return False
        return self.selector.matches(pod.labels)


@dataclass(frozen=True)
class SpreadConstraint:
    max_skew: int
    topology_key: str
    hard: bool  # whenUnsatisfiable: DoNotSchedule (True) or ScheduleAnyway
    selector: LabelSelector
    min_domains: int
    honor_affinity: bool  # nodeAffinityPolicy: Honor (default) or Ignore
    honor_taints: bool  # nodeTaintsPolicy: Honor or Ignore (default)
    owner: str = ""  # system default constraints: "the pods of the same controller" (its uid)

    def matches(self, pod: "PodInfo") -> bool:
        return pod.owner == self.owner if self.owner else self.selector.matches(pod.labels)


@dataclass(frozen=True)
class PodInfo:
    raw: dict = field(repr=False, compare=False)
    uid: str
    namespace: str
    name: str
    labels: dict = field(compare=False)
    priority: int
    preempt_never: bool
    scheduler_name: str
    node_name: str
    nominated_node: str
    requests: dict  # resource name → int (cpu in millicores), the pod count excluded
    cpu: int
    memory: int
    other_requests: tuple[tuple[str, int], ...]  # every requested resource but cpu and memory
    nonzero_cpu: int
    nonzero_memory: int
    host_ports: tuple[tuple[str, str, int], ...]  # (hostIP, protocol, hostPort)
    tolerations: tuple[Toleration, ...]
    node_selector: dict = field(compare=False)
    required_node_terms: tuple[NodeSelectorTerm, ...] | None  # None: no required node affinity
    preferred_node_terms: tuple[tuple[int, NodeSelectorTerm], ...]
    affinity: tuple[AffinityTerm, ...]
    anti_affinity: tuple[AffinityTerm, ...]
    preferred_affinity: tuple[AffinityTerm, ...]
    preferred_anti_affinity: tuple[AffinityTerm, ...]
    spread: tuple[SpreadConstraint, ...]
    images: tuple[str, ...]
    owner: str  # uid of the controlling ReplicaSet, StatefulSet or ReplicationController, if any
    gated: bool  # spec.schedulingGates is not empty
    deleting: bool
    terminal: bool  # phase Succeeded or Failed: holds no resources any more
    start_time: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def _sum_into(total: dict, add: dict) -> None:
    for k, v in add.items():
        total[k] = total.get(k, 0) + v


def _max_into(total: dict, other: dict) -> None:
    for k, v in other.items():
        if v > total.get(k, 0):
            total[k] = v


def pod_requests(spec: dict) -> tuple[dict, int, int]:
    """(requests, non-zero cpu, non-zero memory) as upstream PodRequests / non-zero scoring."""
    total: dict[str, int] = {}
    nz_cpu = nz_mem = 0
    for i, c in enumerate(spec.get("containers") or ()):
        req = quantity.resource_list((c.get("resources") or {}).get("requests"),
                                     f"spec.containers[{i}].resources.requests")
        _sum_into(total, req)
        nz_cpu += req.get("cpu") or DEFAULT_MILLI_CPU
        nz_mem += req.get("memory") or DEFAULT_MEMORY
    sidecars: dict[str, int] = {}
    init_max: dict[str, int] = {}
    for i, c in enumerate(spec.get("initContainers") or ()):
        req = quantity.resource_list((c.get("resources") or {}).get("requests"),
                                     f"spec.initContainers[{i}].resources.requests")
        if c.get("restartPolicy") == "Always":
            _sum_into(sidecars, req)
            _max_into(init_max, sidecars)
        else:
            with_sidecars = dict(sidecars)
            _sum_into(with_sidecars, req)
            _max_into(init_max, with_sidecars)
    _sum_into(total, sidecars)
    _max_into(total, init_max)
    overhead = quantity.resource_list(spec.get("overhead"), "spec.overhead")
    _sum_into(total, overhead)
    # the same formula with the containers' defaults in place of missing requests
    nz_cpu = max(nz_cpu + sidecars.get("cpu", 0), init_max.get("cpu", 0)) + overhead.get("cpu", 0)
    nz_mem = max(nz_mem + sidecars.get("memory", 0), init_max.get("memory", 0)) + overhead.get("memory", 0)
    return total, nz_cpu, nz_mem


def _affinity_terms(terms, pod_ns: str, field: str, weighted: bool,
                    ns_labels: Mapping[str, dict]) -> tuple[AffinityTerm, ...]:
    """Upstream's namespace rules: namespaceSelector {} means every namespace; otherwise the
    listed namespaces plus those the selector picks; neither given means the pod's own."""
    out = []
    for i, t in enumerate(terms or ()):
        weight = 0
        if weighted:
            weight = int(t.get("weight") or 0)
            t = t.get("podAffinityTerm") or {}
        f = f"{field}[{i}]"
        sel = label_selector(t.get("labelSelector"), f + ".labelSelector")
        listed, ns_sel = t.get("namespaces") or (), t.get("namespaceSelector")
        ns_selector = None
        if ns_sel == {}:
            namespaces: frozenset[str] | None = None
        elif ns_sel is not None:
            namespaces = frozenset(listed)
            ns_selector = label_selector(ns_sel, f + ".namespaceSelector")
        else:
            namespaces = frozenset(listed) or frozenset([pod_ns])
        out.append(AffinityTerm(sel, namespaces, str(t.get("topologyKey") or ""), weight, ns_selector, ns_labels))
    return tuple(out)


def _spread(constraints, labels: dict) -> tuple[SpreadConstraint, ...]:
    out = []
    for i, c in enumerate(constraints or ()):
        sel = with_label_keys(label_selector(c.get("labelSelector"), f"spec.topologySpreadConstraints[{i}].labelSelector"),
                              c.get("matchLabelKeys"), labels)
        out.append(SpreadConstraint(
            int(c.get("maxSkew") or 1), str(c.get("topologyKey") or ""),
            c.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule", sel,
            int(c.get("minDomains") or 1), c.get("nodeAffinityPolicy", "Honor") != "Ignore",
            c.get("nodeTaintsPolicy", "Ignore") == "Honor"))
    return tuple(out)


def normalize_image(name: str) -> str:
    """upstream ImageLocality's normalizedImageName: a name without tag or digest means :latest."""
    if "@" in name:
        return name
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else name + ":latest"


def pod_info(pod: dict, ns_labels: Mapping[str, dict] | None = None) -> PodInfo:
    """Parse a pod; ns_labels (namespace → labels) serves affinity terms' namespaceSelector."""
    ns_labels = {} if ns_labels is None else ns_labels
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    ns = md.get("namespace") or "default"
    labels = md.get("labels") or {}
    requests, nz_cpu, nz_mem = pod_requests(spec)
    ports = []
    for c in list(spec.get("containers") or ()) + list(spec.get("initContainers") or ()):
        for p in c.get("ports") or ():
            if p.get("hostPort"):
                ports.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", int(p["hostPort"])))
    tolerations = tuple(Toleration(t.get("key") or "", t.get("operator") or "Equal", t.get("value") or "",
                                   t.get("effect") or "") for t in spec.get("tolerations") or ())
    aff = spec.get("affinity") or {}
    node_aff = aff.get("nodeAffinity") or {}
    required = node_aff.get("requiredDuringSchedulingIgnoredDuringExecution")
    req_terms = None
    if required is not None:
        req_terms = tuple(node_selector_term(t, f"spec.affinity.nodeAffinity.required.nodeSelectorTerms[{i}]")
                          for i, t in enumerate(required.get("nodeSelectorTerms") or ()))
    preferred = tuple((int(p.get("weight") or 0),
                       node_selector_term(p.get("preference") or {}, f"spec.affinity.nodeAffinity.preferred[{i}].preference"))
                      for i, p in enumerate(node_aff.get("preferredDuringSchedulingIgnoredDuringExecution") or ()))
    pa, paa = aff.get("podAffinity") or {}, aff.get("podAntiAffinity") or {}
    req_key, pref_key = "requiredDuringSchedulingIgnoredDuringExecution", "preferredDuringSchedulingIgnoredDuringExecution"
    images = tuple(normalize_image(c["image"]) for c in list(spec.get("initContainers") or ())
                   + list(spec.get("containers") or ()) if c.get("image"))
    return PodInfo(
        raw=pod, uid=md.get("uid") or f"{ns}/{md.get('name')}", namespace=ns, name=md.get("name") or "",
        labels=labels, priority=int(spec.get("priority") or 0),
        preempt_never=spec.get("preemptionPolicy") == "Never",
        scheduler_name=spec.get("schedulerName") or "default-scheduler",
        node_name=spec.get("nodeName") or "", nominated_node=status.get("nominatedNodeName") or "",
        requests=requests, cpu=requests.get("cpu", 0), memory=requests.get("memory", 0),
        other_requests=tuple((k, v) for k, v in requests.items() if k not in ("cpu", "memory") and v),
        nonzero_cpu=nz_cpu, nonzero_memory=nz_mem, host_ports=tuple(ports), tolerations=tolerations,
        node_selector=spec.get("nodeSelector") or {}, required_node_terms=req_terms,
        preferred_node_terms=preferred,
        affinity=_affinity_terms(pa.get(req_key), ns, "spec.affinity.podAffinity.required", False, ns_labels),
        anti_affinity=_affinity_terms(paa.get(req_key), ns, "spec.affinity.podAntiAffinity.required", False, ns_labels),
        preferred_affinity=_affinity_terms(pa.get(pref_key), ns, "spec.affinity.podAffinity.preferred", True, ns_labels),
        preferred_anti_affinity=_affinity_terms(paa.get(pref_key), ns, "spec.affinity.podAntiAffinity.preferred", True, ns_labels),
        spread=_spread(spec.get("topologySpreadConstraints"), labels), images=images,
        owner=next((o.get("uid", "") for o in md.get("ownerReferences") or ()
                    if o.get("controller") and o.get("kind") in SPREAD_OWNERS), ""),
        gated=bool(spec.get("schedulingGates")), deleting=bool(md.get("deletionTimestamp")),
        terminal=status.get("phase") in ("Succeeded", "Failed"),
        start_time=status.get("startTime") or md.get("creationTimestamp") or "")
