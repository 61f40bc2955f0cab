"""`nodeagent image import`: docker-save tarballs and OCI layouts/archives, as skopeo writes them.

skopeo (Debian) converts our OCI layout into the other formats: `docker-archive:` is the
`docker save` format (manifest.json, config, uncompressed layer tars), `oci-archive:` is a layout in
a tar. The imported image is then merged through overlay and run, like a pulled one.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tarfile

import pytest

from runtime.images.archive import ArchiveError, import_archive
from runtime.images.errors import DigestMismatch, UnsafeLayer
from tests.root.images.test_cli_pull import cli
from tests.root.images.test_overlay import merged


def skopeo(src: str, dst: str) -> None:
    subprocess.run(["skopeo", "copy", "--quiet", src, dst], check=True, capture_output=True,
                   timeout=120)


def test_import_oci_layout_directory(test_images, tmp_path):
    out = cli(tmp_path / "s", "image", "import", str(test_images.layout), "--repo", "localhost/kit")
    assert sorted(out.stdout.split()) == sorted(f"localhost/kit:{t}" for t in ("two", "zstd", "multi", "big"))
    [doc] = json.loads(cli(tmp_path / "s", "image", "inspect", "localhost/kit:multi").stdout)
    assert doc["indexDigest"] == test_images.multi.digest
    assert doc["manifestDigest"] == test_images.multi_amd64.digest


def test_import_docker_save_tarball_then_run_it(test_images, tmp_path, store):
    archive = tmp_path / "busybox.tar"
    skopeo(f"oci:{test_images.layout}:two", f"docker-archive:{archive}:example.com/demo/busybox:1.0")
    with tarfile.open(archive) as tf:
        assert "manifest.json" in tf.getnames()                       # the docker save shape
    [rec] = asyncio.run(import_archive(store, archive))
    assert rec.name == "example.com/demo/busybox:1.0"
    assert [lr.diff_id for lr in rec.layers] == [test_images.diff_ids[d] for d in test_images.two_layers]
    out = merged(tmp_path, rec.lowerdirs, run=["/bin/sh", "-c", "cat /etc/motd; id -u"])
    assert out["run"] == [0, "two layers\n0\n", ""]


def test_import_oci_archive(test_images, tmp_path, store):
    archive = tmp_path / "bb-oci.tar"
    skopeo(f"oci:{test_images.layout}:zstd", f"oci-archive:{archive}:zstd")
    [rec] = asyncio.run(import_archive(store, archive, repo="localhost/ociarchive"))
    assert rec.name == "localhost/ociarchive:zstd"
    assert (rec.lowerdirs[0] / "bin/busybox").is_file()


def test_corrupted_archive_stores_nothing(test_images, tmp_path, store):
    archive = tmp_path / "busybox.tar"
    skopeo(f"oci:{test_images.layout}:two", f"docker-archive:{archive}:bad/busybox:1")
    with tarfile.open(archive) as tf:
        layer_names = json.load(tf.extractfile("manifest.json"))[0]["Layers"]
        big = max((tf.getmember(n) for n in layer_names), key=lambda m: m.size)
    raw = bytearray(archive.read_bytes())
    # Flip a byte inside the busybox binary (well inside the layer's data, past its tar header).
    raw[big.offset_data + big.size // 2] ^= 0xFF
    archive.write_bytes(bytes(raw))
    with pytest.raises((DigestMismatch, UnsafeLayer), match="diff_id|refusing"):
        asyncio.run(import_archive(store, archive))
    assert store.list() == [] and list(store.layers.iterdir()) == []


def test_not_an_archive(tmp_path, store):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(ArchiveError, match="not a directory or a tar"):
        asyncio.run(import_archive(store, tmp_path / "x.txt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArchiveError, match="neither an OCI layout"):
        asyncio.run(import_archive(store, tmp_path / "empty"))
