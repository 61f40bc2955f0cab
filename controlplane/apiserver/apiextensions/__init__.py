"""controlplane.apiserver.apiextensions — CustomResourceDefinitions (apiextensions.k8s.io/v1).

A CRD adds a resource to the API while the server runs: objects of a kind the server has never
heard of, checked against the schema in the CRD. The modules, from the CRD inward:

    crd.py          the CRD object: defaults, validation, names and conditions (status)
    structural.py   structural schemas: the non-structural ones refused, pruning, defaulting,
                    and the list/map topology per path (for server-side apply: `list_types`)
    values.py       a custom resource checked against the schema (the 422 messages)
    custom.py       one served version: the registry strategy, reads in other versions
                    (`None` conversion), the scale subresource
    printer.py      Tables from additionalPrinterColumns (a JSONPath subset)
    openapi.py      the definitions `kubectl explain` reads
    registry.py     the resource table follows the CRDs; deleting a CRD deletes its objects

Out of scope: conversion webhooks (a `Webhook` strategy is stored, reads convert as `None`
would) and CEL rules (`x-kubernetes-validations` are stored, not evaluated).

May import: the rest of controlplane.apiserver (never handlers or server), controlplane.storage,
the standard library.
"""

from __future__ import annotations

from controlplane.apiserver import strategy as _strategy, validation as _validation
from controlplane.apiserver.apiextensions import crd as _crd
from controlplane.apiserver.apiextensions.registry import CRD_RT, CRDController, PREFIX
from controlplane.apiserver.apiextensions.structural import list_types
from controlplane.apiserver.errors import FieldError
from controlplane.apiserver.resources import BUILTIN_GROUPS


class CRDStrategy(_strategy.Strategy):
    """upstream's registry/customresourcedefinition strategy, with the naming and establishing
    controllers folded into every write (crd.compute_status)."""

    def prepare_for_create(self, obj: dict) -> None:
        obj["status"] = {}

    def default(self, obj: dict) -> None:
        _crd.default(obj)

    def admit(self, obj: dict, old: dict | None, cache) -> None:
        name = obj["metadata"].get("name")
        others = [e.obj for e in cache.list(PREFIX)[0] if e.obj["metadata"].get("name") != name]
        _crd.compute_status(obj, others)

    def validate(self, obj: dict) -> list[FieldError]:
        return _validation.metadata("CustomResourceDefinition", obj, False) + \
            _crd.validate(obj, BUILTIN_GROUPS)

    def validate_update(self, new: dict, old: dict) -> list[FieldError]:
        return _crd.validate_update(new, old)

    def check_delete(self, obj: dict) -> None:
        """Deleting a CRD first deletes its objects: the finalizer makes the delete two-phase
        (the registry's delete goes on with this copy of the object, finalizer included)."""
        md = obj["metadata"]
        if not md.get("deletionTimestamp") and _crd.FINALIZER not in (md.get("finalizers") or []):
            md["finalizers"] = list(md.get("finalizers") or []) + [_crd.FINALIZER]


_strategy.STRATEGIES[CRD_RT.kind] = CRDStrategy(CRD_RT)

__all__ = ["CRDController", "list_types"]
