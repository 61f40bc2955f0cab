"""Patch semantics on plain dicts: RFC 6902, RFC 7386 and strategic merge with upstream patch keys."""

import pytest

from controlplane.apiserver.patch import PatchError, json_patch, merge_patch, strategic_merge_patch

POD = "io.k8s.api.core.v1.Pod"


def test_json_patch_ops():
    doc = {"a": {"b": [1, 2]}, "c": 1}
    out = json_patch(doc, [{"op": "add", "path": "/a/b/-", "value": 3},
                           {"op": "replace", "path": "/c", "value": 2},
                           {"op": "move", "from": "/c", "path": "/d"},
                           {"op": "copy", "from": "/d", "path": "/e"},
                           {"op": "remove", "path": "/a/b/0"},
                           {"op": "test", "path": "/e", "value": 2}])
    assert out == {"a": {"b": [2, 3]}, "d": 2, "e": 2}
    assert doc == {"a": {"b": [1, 2]}, "c": 1}  # input untouched
    with pytest.raises(PatchError, match="test"):
        json_patch(doc, [{"op": "test", "path": "/c", "value": 9}])
    with pytest.raises(PatchError, match="not found"):
        json_patch(doc, [{"op": "remove", "path": "/nope"}])


def test_merge_patch_replaces_lists_and_deletes_nulls():
    doc = {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [{"name": "x"}, {"name": "y"}]}}
    out = merge_patch(doc, {"metadata": {"labels": {"a": None, "c": "3"}}, "spec": {"containers": [{"name": "z"}]}})
    assert out == {"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"containers": [{"name": "z"}]}}


def test_strategic_merge_merges_containers_by_name_and_ports_by_containerPort():
    doc = {"spec": {"containers": [{"name": "a", "image": "x:1", "ports": [{"containerPort": 80}]},
                                   {"name": "b", "image": "y:1"}]}}
    out = strategic_merge_patch(doc, {"spec": {"containers": [
        {"name": "a", "image": "x:2", "ports": [{"containerPort": 443}]},
        {"name": "c", "image": "z:1"}]}}, POD)
    assert [(c["name"], c["image"]) for c in out["spec"]["containers"]] == [("a", "x:2"), ("c", "z:1"), ("b", "y:1")]
    assert out["spec"]["containers"][0]["ports"] == [{"containerPort": 443}, {"containerPort": 80}]


def test_strategic_merge_order_follows_upstream():
    """Upstream's normalizeElementOrder: patch items in patch (or $setElementOrder) order, new
    items ahead, server-only items inserted where they stood relative to the patch's items."""
    doc = {"spec": {"containers": [{"name": n} for n in "abc"]}}
    names = lambda out: [c["name"] for c in out["spec"]["containers"]]
    out = strategic_merge_patch(doc, {"spec": {"containers": [{"name": "b", "image": "i"}]}}, POD)
    assert names(out) == ["a", "b", "c"] and out["spec"]["containers"][1]["image"] == "i"
    out = strategic_merge_patch(doc, {"spec": {"containers": [{"name": "n"}]}}, POD)
    assert names(out) == ["n", "a", "b", "c"]
    out = strategic_merge_patch(doc, {"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}]}}, POD)
    assert names(out) == ["b", "c", "a"]
    out = strategic_merge_patch(doc, {"spec": {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "n"}, {"name": "b"}, {"name": "c"}],
        "containers": [{"name": "n"}]}}, POD)
    assert names(out) == ["a", "n", "b", "c"]
    with pytest.raises(PatchError, match="doesn't match"):
        strategic_merge_patch(doc, {"spec": {"$setElementOrder/containers": [{"name": "a"}],
                                             "containers": [{"name": "n"}]}}, POD)


def test_strategic_merge_directives():
    doc = {"metadata": {"finalizers": ["a", "b"], "labels": {"x": "1"}},
           "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeSelector": {"k": "v", "j": "w"}}}
    out = strategic_merge_patch(doc, {
        "metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "finalizers": ["c"]},
        "spec": {"containers": [{"name": "a", "$patch": "delete"}],
                 "nodeSelector": {"$patch": "replace", "only": "this"}}}, POD)
    assert out["metadata"]["finalizers"] == ["c", "b"]  # patch items first, as upstream
    assert out["spec"]["containers"] == [{"name": "b"}]
    assert out["spec"]["nodeSelector"] == {"only": "this"}
    # $setElementOrder reorders, as kubectl apply sends it
    out = strategic_merge_patch(doc, {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}, POD)
    assert [c["name"] for c in out["spec"]["containers"]] == ["b", "a"]
    with pytest.raises(PatchError, match="merge key"):
        strategic_merge_patch(doc, {"spec": {"containers": [{"image": "no-name"}]}}, POD)


def test_strategic_merge_replaces_lists_without_a_strategy():
    doc = {"spec": {"containers": [{"name": "a", "args": ["1", "2"]}]}}
    out = strategic_merge_patch(doc, {"spec": {"containers": [{"name": "a", "args": ["3"]}]}}, POD)
    assert out["spec"]["containers"][0]["args"] == ["3"]
