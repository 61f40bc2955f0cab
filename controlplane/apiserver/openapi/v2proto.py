"""/openapi/v2 as protobuf: the swagger 2.0 document in gnostic's `openapi.v2.Document` message.

client-go's DiscoveryClient.OpenAPISchema() asks for /openapi/v2 with only
`Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf` and unmarshals the body as
that message; it has no JSON fallback. kubectl needs it when it validates on the client, which it
does for a `kind: List` (`kubectl create -f list.yaml`, `kubectl get -o yaml | kubectl apply -f -`):
the v3 field-validation check refuses List outright (it has no path of its own), so kubectl checks
each item against the v2 models itself. Answering 406 there made the whole command fail with
"the server was unable to respond with a content type that the client supports".

Field numbers are those of gnostic's openapiv2/OpenAPIv2.proto. We encode what clients read: the
definitions (kubectl's validation and explain walk them, vendor extensions such as
`x-kubernetes-group-version-kind` included) and the paths' operations with their parameters (the
older fieldValidation check looks for the query parameter on a kind's PATCH operation). Vendor
extension values travel as `Any.yaml`; JSON is YAML, so they are written as JSON text.
"""

from __future__ import annotations

import json
import struct

# The media types kube-openapi's handler serves the protobuf under: the first is what client-go
# sends, the second is what the handler names in Content-Type.
MEDIA_TYPES = ("application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
               "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1                 # negative int64 are ten bytes, as in protobuf
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _bytes(field: int, data: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _str(field: int, s: str | None) -> bytes:
    return _bytes(field, s.encode()) if s else b""


def _int(field: int, n) -> bytes:
    return _varint(field << 3) + _varint(int(n)) if n else b""


def _bool(field: int, b) -> bytes:
    return _varint(field << 3) + b"\x01" if b else b""


def _double(field: int, x) -> bytes:
    return _varint(field << 3 | 1) + struct.pack("<d", float(x)) if x else b""


def _any(field: int, value) -> bytes:
    # Any{yaml = 2}; always written, so a false/0/"" default still arrives as one
    return _bytes(field, _str(2, json.dumps(value)) or _bytes(2, b""))


def _extensions(field: int, node: dict) -> bytes:
    # repeated NamedAny{name = 1, value = 2}
    return b"".join(_bytes(field, _str(1, k) + _any(2, v))
                    for k, v in node.items() if k.startswith("x-"))


def schema(s: dict) -> bytes:
    """A JSON schema object as gnostic's Schema message."""
    out = [_str(1, s.get("$ref")), _str(2, s.get("format")), _str(3, s.get("title")),
           _str(4, s.get("description"))]
    if "default" in s:
        out.append(_any(5, s["default"]))
    out += [_double(6, s.get("multipleOf")), _double(7, s.get("maximum")),
            _bool(8, s.get("exclusiveMaximum")), _double(9, s.get("minimum")),
            _bool(10, s.get("exclusiveMinimum")), _int(11, s.get("maxLength")),
            _int(12, s.get("minLength")), _str(13, s.get("pattern")), _int(14, s.get("maxItems")),
            _int(15, s.get("minItems")), _bool(16, s.get("uniqueItems")),
            _int(17, s.get("maxProperties")), _int(18, s.get("minProperties"))]
    out += [_str(19, r) for r in s.get("required", ())]
    out += [_any(20, e) for e in s.get("enum", ())]
    ap = s.get("additionalProperties")
    if isinstance(ap, dict):           # AdditionalPropertiesItem{schema = 1 | boolean = 2}
        out.append(_bytes(21, _bytes(1, schema(ap))))
    elif isinstance(ap, bool):
        out.append(_bytes(21, _varint(2 << 3) + (b"\x01" if ap else b"\x00")))
    typ = s.get("type")
    if typ:                            # TypeItem{repeated value = 1}
        out.append(_bytes(22, b"".join(_str(1, t) for t in ([typ] if isinstance(typ, str) else typ))))
    items = s.get("items")
    if items:                          # ItemsItem{repeated schema = 1}
        out.append(_bytes(23, b"".join(_bytes(1, schema(i))
                                       for i in (items if isinstance(items, list) else [items]))))
    out += [_bytes(24, schema(a)) for a in s.get("allOf", ())]
    props = s.get("properties")
    if props is not None:              # Properties{repeated NamedSchema{name = 1, value = 2}}
        out.append(_bytes(25, b"".join(_bytes(1, _str(1, k) + _bytes(2, schema(v)))
                                       for k, v in props.items())))
    out += [_bool(27, s.get("readOnly")), _extensions(31, s)]
    return b"".join(out)


def _parameter(p: dict) -> bytes:
    """ParametersItem{parameter = 1: Parameter{body_parameter = 1 | non_body_parameter = 2}}."""
    if p.get("in") == "body":
        body = (_str(1, p.get("description")) + _str(2, p.get("name")) + _str(3, "body")
                + _bool(4, p.get("required")) + _bytes(5, schema(p.get("schema", {}))))
        return _bytes(1, _bytes(1, body))
    typ = p.get("type") or p.get("schema", {}).get("type")
    # Query and path sub-schemas share their first fields; then they differ by one
    # (allow_empty_value = 5 exists only on the query one).
    if p.get("in") == "path":
        sub = (_bool(1, p.get("required")) + _str(2, "path") + _str(3, p.get("description"))
               + _str(4, p.get("name")) + _str(5, typ) + _bool(19, p.get("uniqueItems")))
        nbp = _bytes(4, sub)
    else:
        sub = (_bool(1, p.get("required")) + _str(2, p.get("in")) + _str(3, p.get("description"))
               + _str(4, p.get("name")) + _str(6, typ) + _bool(20, p.get("uniqueItems")))
        nbp = _bytes(1 if p.get("in") == "header" else 3, sub)
    return _bytes(1, _bytes(2, nbp))


def _operation(op: dict) -> bytes:
    out = [_str(1, t) for t in op.get("tags", ())]
    out += [_str(3, op.get("description")), _str(5, op.get("operationId"))]
    out += [_str(6, t) for t in op.get("produces", ())]
    out += [_str(7, t) for t in op.get("consumes", ())]
    out += [_bytes(8, _parameter(p)) for p in op.get("parameters", ())]
    responses = b""                    # Responses{NamedResponseValue{name, ResponseValue{response}}}
    for code, r in op.get("responses", {}).items():
        resp = _str(1, r.get("description"))
        if "schema" in r:
            resp += _bytes(2, _bytes(1, schema(r["schema"])))
        responses += _bytes(1, _str(1, code) + _bytes(2, _bytes(1, resp)))
    out.append(_bytes(9, responses))
    out += [_str(10, s) for s in op.get("schemes", ())]
    out.append(_extensions(13, op))
    return b"".join(out)


_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def document(doc: dict) -> bytes:
    """The swagger 2.0 document (as served in JSON) → openapi.v2.Document bytes."""
    info = doc.get("info", {})
    out = [_str(1, doc.get("swagger")),
           _bytes(2, _str(1, info.get("title")) + _str(2, info.get("version")))]
    paths = b""
    for name, item in doc.get("paths", {}).items():
        body = b"".join(_bytes(_METHODS[m], _operation(op)) for m, op in item.items() if m in _METHODS)
        body += b"".join(_bytes(9, _parameter(p)) for p in item.get("parameters", ()))
        paths += _bytes(2, _str(1, name) + _bytes(2, body))
    out.append(_bytes(8, paths))
    out.append(_bytes(9, b"".join(_bytes(1, _str(1, k) + _bytes(2, schema(v)))
                                  for k, v in doc.get("definitions", {}).items())))
    return b"".join(out)
