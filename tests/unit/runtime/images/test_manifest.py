"""Manifests, indexes and configs: parsing, platform choice, attestation skipping, refusals."""

from __future__ import annotations

import json

import pytest

from runtime.images import manifest as m
from runtime.images.errors import ManifestError

D = lambda c: "sha256:" + c * 64  # noqa: E731


def _desc(mt, c, size=10, **extra):
    return {"mediaType": mt, "digest": D(c), "size": size, **extra}


def _index(*entries):
    return json.dumps({"schemaVersion": 2, "mediaType": m.OCI_INDEX, "manifests": list(entries)}).encode()


def test_docker_and_oci_manifests_parse_to_the_same_shape():
    for mt, cfg, layer in [(m.DOCKER_MANIFEST, m.DOCKER_CONFIG, "application/vnd.docker.image.rootfs.diff.tar.gzip"),
                           (m.OCI_MANIFEST, m.OCI_CONFIG, "application/vnd.oci.image.layer.v1.tar+zstd")]:
        raw = json.dumps({"schemaVersion": 2, "mediaType": mt, "config": _desc(cfg, "c"),
                          "layers": [_desc(layer, "1"), _desc(layer, "2")]}).encode()
        got = m.parse_manifest_or_index(raw)
        assert isinstance(got, m.Manifest)
        assert got.config.digest == D("c")
        assert [x.digest for x in got.layers] == [D("1"), D("2")]


def test_index_picks_linux_amd64_skipping_attestations_and_other_platforms():
    raw = _index(
        _desc(m.OCI_MANIFEST, "a", platform={"os": "linux", "architecture": "arm64", "variant": "v8"}),
        _desc(m.OCI_MANIFEST, "b", platform={"os": "unknown", "architecture": "unknown"},
              annotations={"vnd.docker.reference.type": "attestation-manifest"}),
        _desc(m.OCI_MANIFEST, "c", platform={"os": "linux", "architecture": "amd64"}),
    )
    idx = m.parse_manifest_or_index(raw)
    assert idx.select(m.Platform("linux", "amd64")).digest == D("c")
    assert idx.select(m.Platform("linux", "arm64")).digest == D("a")   # variant v8 is arm64's default
    with pytest.raises(ManifestError, match=r"linux/s390x.*linux/arm64/v8, linux/amd64"):
        idx.select(m.Platform("linux", "s390x"))


def test_arm_variants_must_agree():
    raw = _index(_desc(m.OCI_MANIFEST, "a", platform={"os": "linux", "architecture": "arm", "variant": "v6"}),
                 _desc(m.OCI_MANIFEST, "b", platform={"os": "linux", "architecture": "arm", "variant": "v7"}))
    assert m.parse_manifest_or_index(raw).select(m.Platform("linux", "arm", "v7")).digest == D("b")


def test_media_type_can_come_from_content_type_or_shape():
    raw = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    assert isinstance(m.parse_manifest_or_index(raw), m.Index)
    raw = json.dumps({"schemaVersion": 2, "config": _desc(m.OCI_CONFIG, "c"), "layers": []}).encode()
    assert isinstance(m.parse_manifest_or_index(raw, m.DOCKER_MANIFEST + "; charset=utf-8"), m.Manifest)


@pytest.mark.parametrize("doc, fragment", [
    ({"schemaVersion": 1, "name": "x", "fsLayers": []}, "schema 1"),
    ({"schemaVersion": 2, "mediaType": m.OCI_MANIFEST, "config": _desc(m.OCI_CONFIG, "c"),
      "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha512:" + "a" * 128, "size": 1}]},
     "only sha256"),
    ({"schemaVersion": 2, "mediaType": m.OCI_MANIFEST, "config": _desc(m.OCI_CONFIG, "c"),
      "layers": [_desc("application/x-foreign", "1")]}, "unsupported layer media type"),
    ({"schemaVersion": 2, "mediaType": m.OCI_MANIFEST, "config": {"mediaType": m.OCI_CONFIG, "digest": D("c"), "size": -1},
      "layers": []}, "size"),
    ({"schemaVersion": 2, "mediaType": "text/plain"}, "unsupported manifest media type"),
])
def test_unusable_manifests_are_refused_clearly(doc, fragment):
    with pytest.raises(ManifestError, match=fragment):
        m.parse_manifest_or_index(json.dumps(doc).encode())


def test_not_json_is_refused():
    with pytest.raises(ManifestError, match="not valid JSON"):
        m.parse_manifest_or_index(b"<html>")


def test_config_gives_the_runtime_its_defaults():
    raw = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"], "Env": ["PATH=/bin"],
                   "WorkingDir": "/srv", "User": "1000:1000", "ExposedPorts": {"80/tcp": {}, "53/udp": {}}},
        "rootfs": {"type": "layers", "diff_ids": [D("1")]}}).encode()
    cfg = m.parse_config(raw)
    assert cfg.defaults()["Entrypoint"] == ["/bin/sh", "-c"]
    assert cfg.cmd == ("echo hi",) and cfg.env == ("PATH=/bin",)
    assert (cfg.working_dir, cfg.user) == ("/srv", "1000:1000")
    assert cfg.exposed_ports == ("53/udp", "80/tcp")
    assert cfg.diff_ids == (D("1"),)


def test_config_with_bad_fields_names_them():
    base = {"rootfs": {"type": "layers", "diff_ids": []}}
    with pytest.raises(ManifestError, match="Cmd"):
        m.parse_config(json.dumps({**base, "config": {"Cmd": "echo hi"}}).encode())
    with pytest.raises(ManifestError, match=r"rootfs.diff_ids\[0\]"):
        m.parse_config(json.dumps({"rootfs": {"type": "layers", "diff_ids": ["nope"]}}).encode())
    with pytest.raises(ManifestError, match="rootfs.type"):
        m.parse_config(b"{}")


def test_host_platform_uses_go_names():
    assert m.Platform.host().os == "linux"
    assert m.Platform.host().architecture in {"amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64"}
    assert str(m.Platform.parse("linux/arm/v7")) == "linux/arm/v7"
    with pytest.raises(ManifestError):
        m.Platform.parse("linux")
