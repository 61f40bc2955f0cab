"""The resource types we serve: what kubectl learns from discovery, in one table.

A *resource* is a URL collection (`pods`), a *kind* is the type of the objects in it (`Pod`). Each
entry says where it lives (group/version), whether objects belong to a namespace, the names users
type (`po`, `deploy`), and which subresources it has (`pods/status`, `deployments/scale`...). The
same table drives routing, discovery documents, the OpenAPI paths and the storage keys.

Storage keys follow the kube-apiserver's etcd layout: /registry/<resource>/<namespace>/<name>,
or /registry/<resource>/<name> for cluster-scoped kinds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # "status", "scale", "binding"
    has_spec: bool = True  # generation is bumped on spec changes only for kinds with a spec
    definition: str = ""  # OpenAPI definition name, e.g. io.k8s.api.core.v1.Pod
    verbs: tuple[str, ...] = VERBS
    # A view on another resource's objects (events.k8s.io Events are core Events, converted):
    # the plural they are stored under and the apiVersion they are stored in (conversion.py).
    storage_plural: str = ""
    storage_version: str = ""
    # A custom resource (served for a CustomResourceDefinition): its schema, columns and
    # subresource paths (apiextensions.CustomResource); None for the built-in kinds.
    custom: Any = field(default=None, compare=False, repr=False)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def stored_api_version(self) -> str:
        return self.storage_version or self.api_version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def group_version(self) -> str:
        return self.api_version

    def key(self, namespace: str | None, name: str = "") -> str:
        """The storage key of one object, or (name "") the prefix of a namespace or of all."""
        plural = self.storage_plural or self.plural
        if self.custom is not None:  # every version of a custom resource shares one key space
            plural = f"{self.group}/{self.plural}"
        if self.namespaced and namespace:
            return f"/registry/{plural}/{namespace}/{name}"
        return f"/registry/{plural}/{name}"

    def path(self, namespace: str | None, name: str = "") -> str:
        """The URL path of one object (or of the collection when name is "")."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        ns = f"/namespaces/{namespace}" if self.namespaced and namespace else ""
        return f"{base}{ns}/{self.plural}" + (f"/{name}" if name else "")


def _core(kind, plural, namespaced, short=(), cats=(), sub=(), spec=True, verbs=VERBS):
    return ResourceType("", "v1", kind, plural, namespaced, tuple(short), tuple(cats), tuple(sub),
                        spec, f"io.k8s.api.core.v1.{kind}", verbs)


def _grp(group, pkg, kind, plural, namespaced, short=(), cats=(), sub=(), spec=True, version="v1"):
    return ResourceType(group, version, kind, plural, namespaced, tuple(short), tuple(cats),
                        tuple(sub), spec, f"io.k8s.api.{pkg}.{version}.{kind}")


RESOURCES: tuple[ResourceType, ...] = (
    _core("Namespace", "namespaces", False, ["ns"], sub=["status", "finalize"]),
    _core("Node", "nodes", False, ["no"], sub=["status"]),
    _core("Pod", "pods", True, ["po"], ["all"], ["status", "binding", "eviction", "ephemeralcontainers"]),
    _core("Service", "services", True, ["svc"], ["all"], ["status"]),
    _core("Endpoints", "endpoints", True, ["ep"], spec=False),
    _core("ConfigMap", "configmaps", True, ["cm"], spec=False),
    _core("Secret", "secrets", True, spec=False),
    _core("Event", "events", True, ["ev"], spec=False),
    _core("ServiceAccount", "serviceaccounts", True, ["sa"], sub=["token"], spec=False),
    _core("Binding", "bindings", True, spec=False, verbs=("create",)),  # the scheduler's verb
    _core("ReplicationController", "replicationcontrollers", True, ["rc"], ["all"], ["status", "scale"]),
    _core("PersistentVolume", "persistentvolumes", False, ["pv"], sub=["status"]),
    _core("PersistentVolumeClaim", "persistentvolumeclaims", True, ["pvc"], sub=["status"]),
    _core("PodTemplate", "podtemplates", True, spec=False),
    _core("LimitRange", "limitranges", True, ["limits"]),
    _core("ResourceQuota", "resourcequotas", True, ["quota"], sub=["status"]),
    _grp("apps", "apps", "Deployment", "deployments", True, ["deploy"], ["all"], ["status", "scale"]),
    _grp("apps", "apps", "ReplicaSet", "replicasets", True, ["rs"], ["all"], ["status", "scale"]),
    _grp("apps", "apps", "DaemonSet", "daemonsets", True, ["ds"], ["all"], ["status"]),
    _grp("apps", "apps", "StatefulSet", "statefulsets", True, ["sts"], ["all"], ["status", "scale"]),
    _grp("apps", "apps", "ControllerRevision", "controllerrevisions", True, spec=False),
    _grp("batch", "batch", "Job", "jobs", True, cats=["all"], sub=["status"]),
    _grp("batch", "batch", "CronJob", "cronjobs", True, ["cj"], ["all"], ["status"]),
    _grp("policy", "policy", "PodDisruptionBudget", "poddisruptionbudgets", True, ["pdb"], sub=["status"]),
    _grp("scheduling.k8s.io", "scheduling", "PriorityClass", "priorityclasses", False, ["pc"], spec=False),
    _grp("autoscaling", "autoscaling", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True,
         ["hpa"], ["all"], ["status"], version="v2"),
    ResourceType("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True,
                 ("hpa",), ("all",), ("status",), True,
                 "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler", VERBS,
                 "horizontalpodautoscalers", "autoscaling/v2"),
    _grp("networking.k8s.io", "networking", "NetworkPolicy", "networkpolicies", True, ["netpol"]),
    _grp("networking.k8s.io", "networking", "Ingress", "ingresses", True, ["ing"], sub=["status"]),
    _grp("networking.k8s.io", "networking", "IngressClass", "ingressclasses", False),
    _grp("storage.k8s.io", "storage", "StorageClass", "storageclasses", False, ["sc"], spec=False),
    _grp("storage.k8s.io", "storage", "CSIDriver", "csidrivers", False),
    _grp("storage.k8s.io", "storage", "CSINode", "csinodes", False),
    _grp("storage.k8s.io", "storage", "VolumeAttachment", "volumeattachments", False, sub=["status"]),
    _grp("storage.k8s.io", "storage", "CSIStorageCapacity", "csistoragecapacities", True, spec=False),
    _grp("storage.k8s.io", "storage", "VolumeAttributesClass", "volumeattributesclasses", False,
         ["vac"], spec=False),
    _grp("rbac.authorization.k8s.io", "rbac", "Role", "roles", True, spec=False),
    _grp("rbac.authorization.k8s.io", "rbac", "RoleBinding", "rolebindings", True, spec=False),
    _grp("rbac.authorization.k8s.io", "rbac", "ClusterRole", "clusterroles", False, spec=False),
    _grp("rbac.authorization.k8s.io", "rbac", "ClusterRoleBinding", "clusterrolebindings", False, spec=False),
    _grp("admissionregistration.k8s.io", "admissionregistration", "ValidatingWebhookConfiguration",
         "validatingwebhookconfigurations", False, spec=False),
    _grp("admissionregistration.k8s.io", "admissionregistration", "MutatingWebhookConfiguration",
         "mutatingwebhookconfigurations", False, spec=False),
    _grp("admissionregistration.k8s.io", "admissionregistration", "ValidatingAdmissionPolicy",
         "validatingadmissionpolicies", False, sub=["status"]),
    _grp("admissionregistration.k8s.io", "admissionregistration", "ValidatingAdmissionPolicyBinding",
         "validatingadmissionpolicybindings", False),
    _grp("node.k8s.io", "node", "RuntimeClass", "runtimeclasses", False, spec=False),
    _grp("coordination.k8s.io", "coordination", "Lease", "leases", True),
    _grp("discovery.k8s.io", "discovery", "EndpointSlice", "endpointslices", True, spec=False),
    ResourceType("events.k8s.io", "v1", "Event", "events", True, ("ev",), (), (), False,
                 "io.k8s.api.events.v1.Event", VERBS, "events", "v1"),  # a view: conversion.py
    # Questions rather than objects: answered at once, never stored (`kubectl auth can-i/whoami`).
    ResourceType("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
                 False, (), (), (), True, "io.k8s.api.authorization.v1.SelfSubjectAccessReview", ("create",)),
    ResourceType("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions",
                 False, ("crd", "crds"), ("api-extensions",), ("status",), True,
                 "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"),
    ResourceType("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False, (), (),
                 (), False, "io.k8s.api.authentication.v1.SelfSubjectReview", ("create",)),
)

# The kinds that subresources take and return (scale: an autoscaling/v1 Scale).
SUBRESOURCE_KINDS = {"scale": ("autoscaling", "v1", "Scale"), "binding": ("", "v1", "Binding"),
                     "eviction": ("policy", "v1", "Eviction"),
                     "token": ("authentication.k8s.io", "v1", "TokenRequest")}
# Subresources that are verbs (POST only) rather than views of the object.
CREATE_ONLY_SUBRESOURCES = ("binding", "eviction", "token")

# Group → served versions, in discovery order (core "" first, as the kube-apiserver lists them).
GROUPS: dict[str, list[str]] = {}
for _r in RESOURCES:
    GROUPS.setdefault(_r.group, [])
    if _r.version not in GROUPS[_r.group]:
        GROUPS[_r.group].append(_r.version)


BUILTIN_GROUPS = frozenset(GROUPS)
_BUILTIN_KEYS = frozenset((r.group, r.version, r.plural) for r in RESOURCES)


@dataclass
class Registry:
    """Lookups over RESOURCES, and over the custom resources that CustomResourceDefinitions add
    while the server runs (apiextensions/registry.py calls `set_custom`). `generation` changes
    whenever the set of resources does, so documents built from it (OpenAPI) know when to rebuild."""

    by_gv_plural: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    by_gvk: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    custom: tuple[ResourceType, ...] = ()
    generation: int = 0

    def __post_init__(self):
        for r in RESOURCES:
            self.by_gv_plural[(r.group, r.version, r.plural)] = r
            self.by_gvk[(r.group, r.version, r.kind)] = r

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self.by_gv_plural.get((group, version, plural))

    def for_kind(self, group: str, version: str, kind: str) -> ResourceType | None:
        return self.by_gvk.get((group, version, kind))

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        if group in BUILTIN_GROUPS:
            return [r for r in RESOURCES if r.group == group and r.version == version]
        return [r for r in self.custom if r.group == group and r.version == version]

    def set_custom(self, rts: list[ResourceType], group_versions: dict[str, list[str]]) -> None:
        """Replace the custom resources (all of them: the caller derives them from every
        established CRD). `group_versions`: group → versions in preference order."""
        for r in self.custom:
            self.by_gv_plural.pop((r.group, r.version, r.plural), None)
            self.by_gvk.pop((r.group, r.version, r.kind), None)
        for g in [g for g in GROUPS if g not in BUILTIN_GROUPS]:
            del GROUPS[g]
        # The built-in resources win over a CRD that names one of them (upstream serves CRDs
        # only for what the built-in handlers do not).
        rts = [r for r in rts if (r.group, r.version, r.plural) not in _BUILTIN_KEYS]
        self.custom = tuple(rts)
        for r in rts:
            self.by_gv_plural[(r.group, r.version, r.plural)] = r
            self.by_gvk[(r.group, r.version, r.kind)] = r
        for g in sorted(group_versions):
            GROUPS[g] = list(group_versions[g])
        self.generation += 1


REGISTRY = Registry()
