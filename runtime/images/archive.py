"""Import images without a registry: `docker save` tarballs and OCI image layouts.

On a machine without internet, images arrive as files:

    docker save busybox > bb.tar          a tar with manifest.json:
                                          [{"Config": "<cfg>", "RepoTags": ["busybox:latest"],
                                            "Layers": ["<id>/layer.tar", ...]}]
                                          (Docker 25+ writes the layers under blobs/sha256/ and an
                                          OCI index.json beside manifest.json; both shapes work)
    skopeo copy ... oci:DIR:tag           an OCI image layout (image-spec image-layout.md):
                                          oci-layout, index.json, blobs/sha256/<hex>
    skopeo copy ... oci-archive:x.tar     the same layout, as a tar

A layout's index.json names images with the annotation org.opencontainers.image.ref.name — a full
reference (containerd, buildkit) or just a tag (skopeo, umoci); for a bare tag the image is named
`<repo>:<tag>`, where repo is given by the caller (default `localhost/<file name>`).

The classic `docker save` format has no registry manifest at all, only a config and layer tars. We
write a Docker v2 schema 2 manifest for it, so that every image in the store has the same shape
(manifest → config → layers) whatever its origin. Nothing is trusted because it came from a file:
every blob is hashed on the way in, every layer checked against the config's diff_ids, every tar
unpacked by the same safe unpacker as pulled ones. Reading an archive member by the name a
manifest gives is a lookup in the archive's table, never a path on our disk.
"""

from __future__ import annotations

import json
import os
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from runtime.images.decompress import sniff
from runtime.images.digest import hex_of, sha256_bytes
from runtime.images.errors import ImageError, ManifestError
from runtime.images.manifest import (DOCKER_CONFIG, DOCKER_MANIFEST, Index, Manifest, Platform,
                                     check_layers_match, parse_config, parse_manifest_or_index)
from runtime.images.pull import run_blocking
from runtime.images.reference import parse_reference
from runtime.images.store import ImageRecord, ImageStore, LayerRef

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"


class ArchiveError(ImageError):
    """An archive or layout that is not what it claims (missing members, bad JSON)."""


class _Source:
    """Files of an archive by name: a directory (OCI layout) or a tar (docker save, oci-archive)."""

    def __init__(self, path: Path):
        self.path = path
        self.tar = None
        if path.is_dir():
            return
        try:
            self.tar = tarfile.open(path, "r:*")
            self.members = {m.name.removeprefix("./"): m for m in self.tar.getmembers() if m.isfile()}
        except (OSError, tarfile.TarError) as e:
            raise ArchiveError(f"{path}: not a directory or a tar archive: {e}") from e

    def exists(self, name: str) -> bool:
        return name in self.members if self.tar else (self.path / name).is_file()

    def open(self, name: str):
        if self.tar:
            m = self.members.get(name.removeprefix("./"))
            if m is None:
                raise ArchiveError(f"{self.path}: no member {name!r}")
            return self.tar.extractfile(m)
        if ".." in Path(name).parts or name.startswith("/"):
            raise ArchiveError(f"{self.path}: refusing path {name!r}")
        try:
            return open(self.path / name, "rb")
        except OSError as e:
            raise ArchiveError(f"{self.path}: cannot read {name!r}: {e.strerror}") from e

    def read(self, name: str, limit: int = 16 << 20) -> bytes:
        with self.open(name) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise ArchiveError(f"{self.path}: {name} is larger than {limit} bytes")
        return data

    def json(self, name: str):
        try:
            return json.loads(self.read(name))
        except ValueError as e:
            raise ArchiveError(f"{self.path}: {name} is not valid JSON: {e}") from e

    def close(self):
        if self.tar:
            self.tar.close()


@dataclass(frozen=True)
class _Plan:
    name: str
    manifest_raw: bytes
    manifest: Manifest
    index_digest: str | None
    blob_paths: dict          # digest → member name in the source


def _plans_oci(src: _Source, repo: str, platform: Platform) -> list[_Plan]:
    index = src.json("index.json")
    plans = []
    for i, entry in enumerate(index.get("manifests") or []):
        ann = entry.get("annotations") or {}
        label = ann.get(CONTAINERD_NAME) or ann.get(REF_NAME) or f"import-{i}"
        name = label if ("/" in label or ":" in label) else f"{repo}:{label}"
        name = str(parse_reference(name))
        digest = entry.get("digest", "")
        raw = src.read(f"blobs/sha256/{hex_of(digest)}")
        if sha256_bytes(raw) != digest:
            raise ArchiveError(f"{src.path}: blob {digest} does not match its digest")
        doc = parse_manifest_or_index(raw, entry.get("mediaType", ""))
        index_digest = None
        if isinstance(doc, Index):
            index_digest, chosen = digest, doc.select(platform)
            raw = src.read(f"blobs/sha256/{hex_of(chosen.digest)}")
            if sha256_bytes(raw) != chosen.digest:
                raise ArchiveError(f"{src.path}: blob {chosen.digest} does not match its digest")
            doc = parse_manifest_or_index(raw, chosen.media_type)
            if not isinstance(doc, Manifest):
                raise ManifestError(f"{src.path}: nested index in {digest} is not supported")
        blobs = {d.digest: f"blobs/sha256/{hex_of(d.digest)}" for d in (doc.config, *doc.layers)}
        plans.append(_Plan(name, raw, doc, index_digest, blobs))
    if not plans:
        raise ArchiveError(f"{src.path}: index.json lists no images")
    return plans


def _plans_docker(src: _Source, repo: str) -> list[_Plan]:
    entries = src.json("manifest.json")
    if not isinstance(entries, list) or not entries:
        raise ArchiveError(f"{src.path}: manifest.json is not a non-empty list")
    plans = []
    for i, e in enumerate(entries):
        try:
            config_name, layer_names = e["Config"], list(e["Layers"])
        except (KeyError, TypeError) as err:
            raise ArchiveError(f"{src.path}: manifest.json[{i}] lacks Config or Layers") from err
        config_raw = src.read(config_name)
        config_digest = sha256_bytes(config_raw)
        blobs = {config_digest: config_name}
        layers = []
        for name in layer_names:
            # The digest of each layer file as stored (tar, or compressed in some exports). Hashing
            # here reads it once; import_blob hashes it again while copying, and must agree.
            with src.open(name) as f:
                head = f.read(4)
                import hashlib

                h, n = hashlib.sha256(head), len(head)
                while chunk := f.read(1 << 20):
                    h.update(chunk)
                    n += len(chunk)
            digest = "sha256:" + h.hexdigest()
            comp = sniff(head)
            mt = {"": "application/vnd.docker.image.rootfs.diff.tar",
                  "gzip": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                  "zstd": "application/vnd.oci.image.layer.v1.tar+zstd"}[comp]
            layers.append({"mediaType": mt, "digest": digest, "size": n})
            blobs[digest] = name
        manifest = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                    "config": {"mediaType": DOCKER_CONFIG, "digest": config_digest,
                               "size": len(config_raw)},
                    "layers": layers}
        raw = json.dumps(manifest, indent=3).encode()
        doc = parse_manifest_or_index(raw)
        assert isinstance(doc, Manifest)
        tags = e.get("RepoTags") or [f"{repo}:import-{i}"]
        for tag in tags:
            plans.append(_Plan(str(parse_reference(tag)), raw, doc, None, blobs))
    return plans


async def import_archive(store: ImageStore, path: str | os.PathLike, *, repo: str | None = None,
                         platform: Platform | None = None) -> list[ImageRecord]:
    """Import every image in the archive or layout at `path`; returns their records."""
    path = Path(path)
    if not path.exists():
        raise ArchiveError(f"{path}: no such file or directory")
    repo = repo or f"localhost/{path.name.split('.')[0].lower() or 'import'}"
    src = await run_blocking(_Source, path)
    try:
        if src.exists("index.json") and not src.exists("manifest.json"):
            plans = await run_blocking(_plans_oci, src, repo, platform or Platform.host())
        elif src.exists("manifest.json"):
            plans = await run_blocking(_plans_docker, src, repo)
        else:
            raise ArchiveError(f"{path}: neither an OCI layout (index.json) nor a docker save "
                               "archive (manifest.json)")
        records = []
        async with store.gc_lock(shared=True):
            for plan in plans:
                records.append(await _import_one(store, src, plan))
        return records
    finally:
        src.close()


async def _import_one(store: ImageStore, src: _Source, plan: _Plan) -> ImageRecord:
    m = plan.manifest
    manifest_digest = sha256_bytes(plan.manifest_raw)
    await run_blocking(store.put_blob, manifest_digest, plan.manifest_raw)

    def copy(desc):
        with src.open(plan.blob_paths[desc.digest]) as f:
            store.import_blob(desc.digest, f, desc.size, origin=str(src.path))

    await run_blocking(copy, m.config)
    config = parse_config(await run_blocking(store.read_blob, m.config.digest))
    check_layers_match(m, config)
    layers = tuple(LayerRef(d.digest, diff, d.media_type, d.size)
                   for d, diff in zip(m.layers, config.diff_ids))
    for desc, lr in zip(m.layers, layers):
        if store.has_layer(lr.diff_id):
            continue
        async with store.locked(f"layer-{hex_of(lr.diff_id)}"):
            if not store.has_layer(lr.diff_id):
                await run_blocking(copy, desc)
                await run_blocking(store.unpack_blob, lr)
    plat = Platform(config.os, config.architecture, config.variant)
    rec = ImageRecord(name=plan.name, manifest_digest=manifest_digest,
                      config_digest=m.config.digest, layers=layers, config=config,
                      platform=str(plat), index_digest=plan.index_digest, created=time.time())
    return await run_blocking(store.put_image, rec)
