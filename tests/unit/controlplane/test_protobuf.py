"""Decoding Kubernetes protobuf bodies, checked against bytes built by hand from generated.proto."""

from controlplane.apiserver import protobuf


def _varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def field(num, value):
    if isinstance(value, int):
        return _varint(num << 3) + _varint(value)
    if isinstance(value, str):
        value = value.encode()
    return _varint(num << 3 | 2) + _varint(len(value)) + value


def test_configmap_envelope():
    meta = field(1, "cm") + field(3, "default") + field(5, "") + \
        field(8, field(1, 0) + field(2, 0)) + \
        field(11, field(1, "app") + field(2, "web"))  # labels map entry
    cm = field(1, meta) + field(2, field(1, "k") + field(2, "v")) + field(3, field(1, "b") + field(2, b"\x00\x01"))
    unknown = field(1, field(1, "v1") + field(2, "ConfigMap")) + field(2, cm)
    obj = protobuf.decode(b"k8s\x00" + unknown)
    assert obj == {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "cm", "namespace": "default", "labels": {"app": "web"}},
                   "data": {"k": "v"}, "binaryData": {"b": "AAE="}}


def test_deployment_keeps_pointer_zero_and_drops_omitempty_zero():
    spec = field(1, 0) + field(7, 0) + field(4, field(1, "RollingUpdate") + field(2, field(1, field(1, 1) + field(3, "25%"))))  # IntOrString type 1: a string
    d = field(1, field(1, "d")) + field(2, spec)
    obj = protobuf.decode(b"k8s\x00" + field(1, field(1, "apps/v1") + field(2, "Deployment")) + field(2, d))
    assert obj["spec"]["replicas"] == 0  # *int32: a real zero
    assert "paused" not in obj["spec"]  # bool with omitempty: Go's JSON would leave it out
    assert obj["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%"}}
