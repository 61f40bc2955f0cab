#!/usr/bin/env python3
"""Regenerate controlplane/apiserver/protobuf/messages.json.gz from Kubernetes' generated.proto files.

kubectl's typed clients (`kubectl create deployment`, `kubectl create configmap`, ...) send request
bodies as Kubernetes protobuf. To read them we need each message's field numbers, which live in
the `generated.proto` files of k8s.io/api and k8s.io/apimachinery. This script turns them into a
table  message → field number → (json name, type, repeated | map key/value types, omit-zero).

"omit-zero" comes from the Go structs in the same packages' types.go: a field that is not a
pointer and has `json:",omitempty"` is left out of JSON when it is 0, false or "" — Go's protobuf
encoder writes it anyway, so the decoder drops those zeros to get the object JSON would carry.

    scripts/gen_protobuf_schema.py DIR   # DIR holds k8s.io/api/... and k8s.io/apimachinery/...
"""

import gzip
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIELD = re.compile(r"^\s*(optional|repeated)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)")
MAP = re.compile(r"^\s*map<\s*([\w.]+)\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)")
SCALARS = {"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "double", "float",
           "sint32", "sint64", "fixed32", "fixed64"}


def qualify(t: str, package: str) -> str:
    if t in SCALARS:
        return t
    return t[1:] if t.startswith(".") else f"{package}.{t}"


def parse(path: Path, out: dict) -> None:
    package, message = "", None
    for line in path.read_text().splitlines():
        line = line.split("//", 1)[0]
        if m := re.match(r"^package\s+([\w.]+);", line):
            package = m.group(1)
        elif m := re.match(r"^message\s+(\w+)\s*\{", line):
            message = f"{package}.{m.group(1)}"
            out[message] = {}
        elif line.startswith("}"):
            message = None
        elif message and (m := MAP.match(line)):
            k, v, name, num = m.groups()
            out[message][num] = [name, "map", qualify(k, package), qualify(v, package)]
        elif message and (m := FIELD.match(line)):
            label, t, name, num = m.groups()
            out[message][num] = [name, qualify(t, package), label == "repeated"]


GO_FIELD = re.compile(r'^\s*\w+\s+(\*?)[\w.\[\]*]+\s+`json:"(\w*)(,omitempty)?[^"]*".*protobuf:"\w+,(\d+),')


INLINE = re.compile(r'^\s*\*?[\w.]+\s+`json:"(?:,[^"]*)?".*protobuf:"\w+,(\d+),')


def omit_zero(types_go: Path, package: str, out: dict) -> None:
    """Mark fields that JSON omits when zero (non-pointer + omitempty), from Go's types.go, and
    embedded structs that JSON inlines (no JSON name, `json:""` or `",inline"`: Volume's VolumeSource, Probe's
    ProbeHandler, IngressRule's IngressRuleValue) — their fields belong to the outer object."""
    message = None
    for line in types_go.read_text().splitlines():
        if m := re.match(r"^type (\w+) struct \{", line):
            message = f"{package}.{m.group(1)}"
        elif line.startswith("}"):
            message = None
        elif message in out and (m := INLINE.match(line)):
            spec = out[message].get(m.group(1))
            if spec and len(spec) == 3:
                spec.append("i")
        elif message in out and (m := GO_FIELD.match(line)):
            pointer, _, omitempty, num = m.groups()
            spec = out[message].get(num)
            if spec and spec[1] in SCALARS and not pointer and omitempty:
                spec.append("z")


def main() -> None:
    src = Path(sys.argv[1])
    out: dict = {}
    for f in sorted(src.rglob("generated.proto")):
        parse(f, out)
    for f in sorted(src.rglob("types.go")):
        package = ".".join(f.parent.relative_to(src).parts).replace("/", ".")
        omit_zero(f, package, out)
    data = json.dumps(out, sort_keys=True, separators=(",", ":")).encode()
    dest = ROOT / "controlplane/apiserver/protobuf/messages.json.gz"
    dest.write_bytes(gzip.compress(data, 9, mtime=0))
    print(f"{dest.relative_to(ROOT)}: {len(out)} messages ({dest.stat().st_size} bytes gzipped)")


if __name__ == "__main__":
    main()
