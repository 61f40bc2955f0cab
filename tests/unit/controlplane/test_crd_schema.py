"""Structural schemas without a server: pruning, defaulting, validation and the structural rules,
each against what upstream's apiextensions-apiserver does with the same schema and object."""

import pytest

from controlplane.apiserver.apiextensions import printer, structural, values

SCHEMA = {"type": "object", "properties": {
    "spec": {"type": "object", "properties": {
        "size": {"type": "integer", "default": 3},
        "mode": {"type": "string", "default": "fast"},
        "label": {"type": "string", "nullable": True, "default": "x"},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "items": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "weight": {"type": "integer", "default": 1}}}},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "pod": {"type": "object", "x-kubernetes-embedded-resource": True, "properties": {
            "spec": {"type": "object", "properties": {"x": {"type": "string"}}}}},
    }}}}


def text(errs):
    return [f"{e.field}: {e.text()}" for e in errs]


def test_prune_keeps_declared_preserved_and_embedded_meta():
    obj = {"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "n", "whatever": 1},
           "spec": {"size": 1, "unknown": 2, "free": {"any": {"thing": [1]}},
                    "items": [{"name": "a", "junk": True}], "labels": {"k": "v"},
                    "pod": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "bad": 1},
                            "spec": {"x": "y", "z": 1}}},
           "status": {"gone": True}}
    dropped = structural.prune(obj, SCHEMA)
    assert sorted(dropped) == ["spec.items[0].junk", "spec.pod.metadata.bad", "spec.pod.spec.z",
                              "spec.unknown", "status"]
    assert obj["spec"]["free"] == {"any": {"thing": [1]}}
    assert obj["spec"]["pod"] == {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                  "spec": {"x": "y"}}
    assert obj["metadata"] == {"name": "n", "whatever": 1}  # the root's metadata is not the schema's


def test_defaults_fill_missing_and_non_nullable_nulls():
    obj = {"spec": {"mode": None, "label": None, "items": [{"name": "a"}, {"name": "b", "weight": 5}]}}
    structural.default(obj, SCHEMA)
    assert obj["spec"]["size"] == 3 and obj["spec"]["mode"] == "fast"
    assert obj["spec"]["label"] is None  # nullable: a null is a value
    assert [i["weight"] for i in obj["spec"]["items"]] == [1, 5]
    nulls = {"spec": {"labels": None}}
    structural.default(nulls, SCHEMA)
    assert "labels" not in nulls["spec"]  # non-nullable, no default: the null is pruned


@pytest.mark.parametrize("schema,value,message", [
    ({"type": "string", "format": "email"}, "nope",
     'f: Invalid value: "nope": f in body must be of type email: "nope"'),
    ({"type": "string", "maxLength": 3}, "abcd", "f: Too long: may not be more than 3 bytes"),
    ({"type": "string", "minLength": 2}, "a", 'f: Invalid value: "a": f in body should be at least 2 chars long'),
    ({"type": "array", "minItems": 1, "items": {"type": "string"}}, [],
     "f: Invalid value: 0: f in body should have at least 1 items"),
    ({"type": "integer", "maximum": 5, "exclusiveMaximum": True}, 5,
     "f: Invalid value: 5: f in body should be less than 5"),
    ({"type": "number", "multipleOf": 0.5}, 0.3, "f: Invalid value: 0.3: f in body should be a multiple of 0.5"),
    ({"type": "string"}, None, 'f: Invalid value: "null": f in body must be of type string: "null"'),
    ({"x-kubernetes-int-or-string": True}, [1],
     'f: Invalid value: "array": f in body must be of type integer,string: "array"'),
    ({"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}, ["a", "a"],
     'f[1]: Duplicate value: "a"'),
    ({"type": "object", "maxProperties": 1, "additionalProperties": {"type": "string"}}, {"a": "1", "b": "2"},
     "f: Too many: 2: must have at most 1 items"),
])
def test_value_messages(schema, value, message):
    errs = values.validate({"f": value}, {"type": "object", "properties": {"f": schema}})
    assert text(errs) == [message]


@pytest.mark.parametrize("value", [3, "3", "50%"])
def test_int_or_string_accepts(value):
    assert values.validate({"f": value}, {"type": "object", "properties": {
        "f": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}}}) == []


@pytest.mark.parametrize("schema,message", [
    ({"type": "string"}, 'p.type: Invalid value: "string": must be object at the root'),
    ({"type": "object", "properties": {"a": {"type": "array"}}},
     "p.properties[a].items: Required value: must be specified"),
    ({"type": "object", "additionalProperties": {"type": "string"}},
     "p.additionalProperties: Forbidden: must not be used at the root"),
    ({"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}},
                                             "additionalProperties": {"type": "string"}}}},
     "p.properties[a].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"),
    ({"type": "object", "properties": {"a": {"type": "object", "x-kubernetes-embedded-resource": True}}},
     "p.properties[a].properties: Required value: must not be empty if x-kubernetes-embedded-resource "
     "is true without x-kubernetes-preserve-unknown-fields"),
    ({"type": "object", "properties": {"a": {"type": "string", "allOf": [{"description": "d"}]}}},
     "p.properties[a].allOf[0].description: Forbidden: must be empty to be structural"),
    ({"type": "object", "properties": {"a": {"type": "string", "pattern": "(unclosed"}}},
     "p.properties[a].pattern: Invalid value"),
])
def test_non_structural(schema, message):
    got = text(structural.validate_structural(schema, "p"))
    assert any(g.startswith(message) for g in got), got


def test_int_or_string_patterns_are_structural():
    for s in ({"x-kubernetes-int-or-string": True},
              {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
              {"x-kubernetes-int-or-string": True,
               "allOf": [{"anyOf": [{"type": "integer"}, {"type": "string"}]}, {"pattern": "^x"}]}):
        assert structural.validate_structural({"type": "object", "properties": {"a": s}}, "p") == []


def test_printer_jsonpath():
    obj = {"metadata": {"name": "n"}, "status": {"conditions": [
        {"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]},
        "spec": {"list": [1, 2], "m": {"a.b": 7}}}
    assert printer.find(obj, '.status.conditions[?(@.type=="Synced")].status') == ["False"]
    assert printer.find(obj, ".spec.list[1]") == [2]
    assert printer.find(obj, ".spec.list[*]") == [1, 2]
    assert printer.find(obj, ".spec.m['a.b']") == [7]
    assert printer.find(obj, ".spec.missing") == []
    cols = ({"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
            {"name": "List", "type": "string", "jsonPath": ".spec.list"},
            {"name": "Gone", "type": "integer", "jsonPath": ".spec.gone"})
    assert printer.cells(cols, obj) == ["n", "True", "[1,2]", None]


@pytest.mark.parametrize("node,message", [
    ({"type": "array", "x-kubernetes-list-type": "map", "items": {"type": "object", "properties": {
        "name": {"type": "string"}}}},
     "p.properties[a].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"),
    ({"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
      "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
     "p.properties[a].items.properties[name].default: Required value: this property is in "
     "x-kubernetes-list-map-keys, so it must have a default or be a required property"),
    ({"type": "array", "x-kubernetes-list-type": "bag", "items": {"type": "string"}},
     'p.properties[a].x-kubernetes-list-type: Unsupported value: "bag": supported values: "atomic", "set", "map"'),
    ({"type": "array", "x-kubernetes-list-map-keys": ["k"], "items": {"type": "string"}},
     "p.properties[a].x-kubernetes-list-type: Required value: must be map if x-kubernetes-list-map-keys is non-empty"),
    ({"type": "null"}, "p.properties[a].type: Forbidden: type cannot be set to null, use nullable as an alternative"),
    ({"type": "string", "$ref": "#/x"}, "p.properties[a].$ref: Forbidden: $ref is not supported"),
])
def test_list_type_and_unsupported_rules(node, message):
    got = text(structural.validate_structural({"type": "object", "properties": {"a": node}}, "p"))
    assert message in got, got


def test_schema_may_restrict_metadata_name():
    schema = {"type": "object", "properties": {"metadata": {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 5}}}}}
    assert structural.validate_structural(schema, "p") == []
    assert text(values.validate({"metadata": {"name": "toolong"}}, schema)) == [
        "metadata.name: Too long: may not be more than 5 bytes"]
    assert values.validate({"metadata": {"name": "ok", "labels": {"a": "b"}}}, schema) == []


def test_a_crd_cannot_replace_a_built_in_resource():
    from controlplane.apiserver.apiextensions import crd as crds, registry
    from controlplane.apiserver.resources import REGISTRY
    crd = {"metadata": {"name": "ingresses.networking.k8s.io",
                        "annotations": {"api-approved.kubernetes.io": "yes"}},
           "spec": {"group": "networking.k8s.io", "scope": "Namespaced",
                    "names": {"plural": "ingresses", "kind": "Ingress"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
    crds.default(crd)
    crds.compute_status(crd, [])
    try:
        REGISTRY.set_custom(registry.resource_types(crd), {})
        assert REGISTRY.lookup("networking.k8s.io", "v1", "ingresses").custom is None
    finally:
        REGISTRY.set_custom([], {})
    assert REGISTRY.lookup("networking.k8s.io", "v1", "ingresses").custom is None


def test_completeness_of_value_validations():
    ok = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "a": {"type": "string"}, "b": {"type": "string"}},
        "oneOf": [{"required": ["a"]}, {"properties": {"b": {"pattern": "^x"}}}]}}}
    assert structural.validate_structural(ok, "p") == []
    bad = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "a": {"type": "string"}}, "anyOf": [{"properties": {"c": {"minLength": 1}}}]}}}
    assert text(structural.validate_structural(bad, "p")) == [
        "p.properties[spec].properties[c]: Required value: because it is defined in "
        "p.properties[spec].anyOf[0].properties[c]"]
