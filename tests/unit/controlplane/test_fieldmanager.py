"""The field manager's pieces without a server: fieldsV1, merge order, ownership rules — each
against what structured-merge-diff does for the same input."""

from __future__ import annotations

import pytest

from controlplane.apiserver.errors import APIError
from controlplane.apiserver.fieldmanager import Writer, apply, fieldpath as fp, managers, typed, typeinfo
from controlplane.apiserver.resources import REGISTRY

DEPLOY = REGISTRY.for_kind("apps", "v1", "Deployment")
ROOT = typeinfo.root("apps", "v1", "Deployment", DEPLOY.definition)
CONTAINERS = ("f:spec", "f:template", "f:spec", "f:containers")


def containers(*names, image="i"):
    return {"spec": {"template": {"spec": {"containers": [{"name": n, "image": image} for n in names]}}}}


def test_fields_v1_round_trip_and_order():
    tree = {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:template": {"f:spec": {"f:containers": {
                'k:{"name":"a"}': {".": {}, "f:image": {}}}}}}}
    paths = fp.from_fields_v1(tree)
    assert ("f:metadata", "f:labels") in paths and ("f:metadata",) not in paths
    assert fp.to_fields_v1(paths) == tree
    # fields before keys before values (upstream's PathElement order)
    assert list(fp.to_fields_v1({("v:1",), ("k:{}",), ("f:z",)})) == ["f:z", "k:{}", "v:1"]
    assert fp.to_string(CONTAINERS + ('k:{"name":"a"}', "f:image")) == \
        '.spec.template.spec.containers[name="a"].image'
    with pytest.raises(ValueError):
        fp.from_fields_v1({"x:bad": {}})


def test_keyed_list_merge_keeps_live_items_where_they_stood():
    live = containers("a", "b", "c")
    merged = typed.merge(ROOT, live, containers("c", "d", image="new"))
    names = [c["name"] for c in merged["spec"]["template"]["spec"]["containers"]]
    assert names == ["a", "b", "c", "d"]
    assert merged["spec"]["template"]["spec"]["containers"][2]["image"] == "new"
    # the applied order wins among the applied items
    merged = typed.merge(ROOT, containers("a", "b"), containers("b", "a"))
    assert [c["name"] for c in merged["spec"]["template"]["spec"]["containers"]] == ["b", "a"]


def test_atomic_list_is_replaced_and_owned_whole():
    live = {"spec": {"template": {"spec": {"containers": [{"name": "a", "args": ["x", "y"]}]}}}}
    cfg = {"spec": {"template": {"spec": {"containers": [{"name": "a", "args": ["z"]}]}}}}
    merged = typed.merge(ROOT, live, cfg)
    assert merged["spec"]["template"]["spec"]["containers"][0]["args"] == ["z"]
    assert CONTAINERS + ('k:{"name":"a"}', "f:args") in typed.field_set(ROOT, cfg)


def test_port_key_defaults_protocol():
    ports = [{"containerPort": 80}]
    cfg = {"spec": {"template": {"spec": {"containers": [{"name": "a", "ports": ports}]}}}}
    path = CONTAINERS + ('k:{"name":"a"}', "f:ports", 'k:{"containerPort":80,"protocol":"TCP"}')
    assert path in typed.field_set(ROOT, cfg)


def test_apply_conflicts_force_and_removal():
    w = Writer("a", "Apply", "apps/v1")
    base = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}
    obj = apply(DEPLOY, None, {**base, "spec": {"replicas": 1, "paused": True}}, w)
    other = Writer("b", "Apply", "apps/v1")
    with pytest.raises(APIError) as e:
        apply(DEPLOY, obj, {**base, "spec": {"replicas": 2}}, other)
    assert e.value.code == 409
    assert e.value.message == 'Apply failed with 1 conflict: conflict with "a": .spec.replicas'
    # the same value is no conflict: shared ownership
    obj = apply(DEPLOY, obj, {**base, "spec": {"replicas": 1}}, other)
    owners = {e["manager"] for e in obj["metadata"]["managedFields"]}
    assert owners == {"a", "b"}
    # a stops applying both fields: paused goes, replicas stays (b still owns it)
    obj = apply(DEPLOY, obj, base, w)
    assert obj["spec"] == {"replicas": 1}
    assert {e["manager"] for e in obj["metadata"]["managedFields"]} == {"b"}


def test_update_takes_changed_fields_from_others():
    ident = managers.Identity("a", "Apply", "")
    m = {ident: managers.Owned({("f:spec", "f:replicas"), ("f:spec", "f:paused")}, "apps/v1", "t")}
    old = {"spec": {"replicas": 1, "paused": True}}
    new = {"spec": {"replicas": 3}}
    writer = managers.identity("kubectl-edit", "Update", "apps/v1")
    managers.update(ROOT, old, new, m, writer, "apps/v1", "t2", managers.STRIPPED)
    assert ident not in m  # lost both: replicas changed, paused removed; empty entries go
    assert m[writer].fields == {("f:spec", "f:replicas")}
