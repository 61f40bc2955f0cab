"""How objects are stored: compact JSON bytes, without their resourceVersion.

The resourceVersion of an object *is* the storage revision of its last write (mod_rev), so it is
not stored inside the value — it is put into `metadata.resourceVersion` when the value is read,
exactly as the kube-apiserver's etcd3 store does. A stored value therefore never disagrees with
its revision, and writing one never needs to know the revision in advance.
"""

from __future__ import annotations

import json

from controlplane.storage import KeyValue


def encode(obj: dict) -> bytes:
    """Stored form: compact JSON without resourceVersion (that is the revision, added on read)."""
    md = obj.get("metadata")
    if isinstance(md, dict) and "resourceVersion" in md:
        obj = {**obj, "metadata": {k: v for k, v in md.items() if k != "resourceVersion"}}
    return json.dumps(obj, separators=(",", ":")).encode()


def decode(kv: KeyValue) -> dict:
    obj = json.loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_rev)
    return obj
