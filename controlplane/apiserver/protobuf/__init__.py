"""Reading Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`).

kubectl's typed clients send built-in objects as protobuf. The wire format is:

    "k8s\\x00"  +  runtime.Unknown{ typeMeta{apiVersion, kind}, raw, contentEncoding, contentType }

where `raw` is the object encoded as its generated.proto message. Protobuf carries field *numbers*,
not names; messages.json.gz (scripts/gen_protobuf_schema.py) maps them back to the JSON names,
so a protobuf body becomes the same dict a JSON body would.

Embedded structs that JSON inlines (a Volume's VolumeSource, a Probe's ProbeHandler) are marked
too: their fields are merged into the outer object.

Go's encoder writes non-pointer fields even when empty, while Go's JSON encoder leaves out the
`omitempty` ones; the table marks those (from the Go structs) and we drop their zero values, so
`replicas: 0` (a pointer) survives and `paused: false` does not appear out of nowhere.

We only read protobuf; responses are always JSON (clients accept it and say so in Accept).
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import gzip
import json
import struct
from pathlib import Path

from controlplane.apiserver.errors import APIError

MAGIC = b"k8s\x00"
META = "k8s.io.apimachinery.pkg.apis.meta.v1."


def _package(group: str) -> str:
    """k8s.io/api's Go package of a group: core for "", else the group's first label
    (batch, apps, scheduling.k8s.io → scheduling, rbac.authorization.k8s.io → rbac)."""
    return group.split(".")[0] if group else "core"


class ProtobufError(APIError):
    def __init__(self, message: str):
        super().__init__(400, "BadRequest", f"protobuf body could not be decoded: {message}")


# The table takes field names from generated.proto, which lower-cases only the first letter of
# the Go name; these three differ from their JSON tags (BoundObjectReference.UID is `uid`: a
# TokenRequest from `kubectl create token --bound-object-uid` lost its uid).
_JSON_NAMES = {"uID": "uid", "aPIGroup": "apiGroup"}


@functools.cache
def messages() -> dict[str, dict[str, list]]:
    table = json.loads(gzip.decompress((Path(__file__).parent / "messages.json.gz").read_bytes()))
    for fields in table.values():
        for f in fields.values():
            f[0] = _JSON_NAMES.get(f[0], f[0])
    return table


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise ProtobufError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 70:
            raise ProtobufError("varint too long")


def _fields(buf: bytes):
    """Yield (field number, wire type, value) for one message's bytes."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
            if i > len(buf):
                raise ProtobufError("truncated field")
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ProtobufError(f"unsupported wire type {wt}")
        yield num, wt, v


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


def _scalar(t: str, wt: int, v):
    if t == "string":
        return bytes(v).decode()
    if t == "bytes":
        return base64.b64encode(bytes(v)).decode()  # JSON carries []byte as base64
    if t == "bool":
        return bool(v)
    if t in ("int32", "int64"):
        return _signed(v, 64)
    if t in ("uint32", "uint64"):
        return v
    if t == "double":
        return struct.unpack("<d", v)[0]
    if t == "float":
        return struct.unpack("<f", v)[0]
    raise ProtobufError(f"unsupported scalar type {t}")


def _time(msg: dict, micro: bool):
    seconds, nanos = msg.get("seconds", 0), msg.get("nanos", 0)
    if not seconds and not nanos:
        return None
    t = _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc)
    if micro:
        return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def decode_message(name: str, buf: bytes):
    """One message as its JSON value (a dict, or the special JSON form of well-known types)."""
    if name == "k8s.io.apimachinery.pkg.runtime.RawExtension" or name == META + "FieldsV1":
        raw = b""
        for num, _, v in _fields(buf):
            if num == 1:
                raw = bytes(v)
        return json.loads(raw) if raw else None
    fields = messages().get(name)
    if fields is None:
        raise ProtobufError(f"unknown message {name}")
    out: dict = {}
    for num, wt, v in _fields(buf):
        spec = fields.get(str(num))
        if spec is None:
            continue  # unknown field: proto3 semantics, ignore
        fname, ftype = spec[0], spec[1]
        if ftype == "map":
            kt, vt = spec[2], spec[3]
            k = val = None
            for n2, wt2, v2 in _fields(v):
                if n2 == 1:
                    k = _scalar(kt, wt2, v2)
                elif n2 == 2:
                    val = _scalar(vt, wt2, v2) if vt in _SCALARS else decode_message(vt, v2)
            if vt == "string" and val is None:
                val = ""
            out.setdefault(fname, {})[k] = val
            continue
        repeated = spec[2]
        if ftype in _SCALARS:
            if repeated and wt == 2 and ftype not in ("string", "bytes"):  # packed
                vals, j = [], 0
                while j < len(v):
                    x, j = _varint(v, j)
                    vals.append(_scalar(ftype, 0, x))
                out.setdefault(fname, []).extend(vals)
                continue
            value = _scalar(ftype, wt, v)
        else:
            value = decode_message(ftype, v)
        if repeated:
            out.setdefault(fname, []).append(value)
        elif len(spec) > 3 and spec[3] == "i" and isinstance(value, dict):
            out.update(value)  # an embedded struct JSON inlines (`json:",inline"`)
        elif len(spec) > 3 and spec[3] == "z" and value in (0, False, ""):
            continue  # JSON would omit it (omitempty, not a pointer)
        else:
            out[fname] = value
    return _special(name, out)


_SCALARS = {"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "double", "float"}


def _special(name: str, out: dict):
    if name == META + "Time":
        return _time(out, micro=False)
    if name == META + "MicroTime":
        return _time(out, micro=True)
    if name == "k8s.io.apimachinery.pkg.api.resource.Quantity":
        return out.get("string", "")
    if name == "k8s.io.apimachinery.pkg.util.intstr.IntOrString":
        return out.get("strVal", "") if out.get("type") == 1 else out.get("intVal", 0)
    if name == META + "Duration":
        return f"{out.get('duration', 0) / 1e9:g}s"
    # Go writes empty non-pointer strings and zero Times; JSON's omitempty would not.
    return {k: v for k, v in out.items() if v != "" and v is not None}


def decode(body: bytes) -> dict:
    """A whole protobuf request body → the object as a JSON-shaped dict."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s\\0 prefix")
    unknown = decode_message_raw(body[len(MAGIC):])
    api_version, kind = unknown["apiVersion"], unknown["kind"]
    group, _, version = api_version.rpartition("/")
    if unknown["contentEncoding"]:
        raise ProtobufError(f"content encoding {unknown['contentEncoding']!r} is not supported")
    base = "k8s.io.apimachinery.pkg.apis.meta.v1." if kind in ("DeleteOptions", "Status") else \
        f"k8s.io.api.{_package(group)}.{version}."
    if base + kind not in messages():
        raise ProtobufError(f"unknown kind {api_version}/{kind}")
    obj = decode_message(base + kind, unknown["raw"])
    return {"apiVersion": api_version, "kind": kind, **obj}


def decode_message_raw(buf: bytes) -> dict:
    out = {"apiVersion": "", "kind": "", "raw": b"", "contentEncoding": ""}
    for num, _, v in _fields(buf):
        if num == 1:
            for n2, _, v2 in _fields(v):
                if n2 == 1:
                    out["apiVersion"] = bytes(v2).decode()
                elif n2 == 2:
                    out["kind"] = bytes(v2).decode()
        elif num == 2:
            out["raw"] = bytes(v)
        elif num == 3:
            out["contentEncoding"] = bytes(v).decode()
    return out
