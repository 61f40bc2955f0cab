"""Real test images, built from Debian's busybox-static, written as OCI image layouts.

    layout = OciLayout(tmp / "oci")
    two = layout.image([base_layer(), top_layer()], tag="two")      # gzip layers, a whiteout
    layout.index([...], tag="multi")                                 # a multi-arch index

The layouts are what `skopeo copy oci:DIR:TAG docker://...` pushes into the real registry of
tests/registryfix.py, and what `nodeagent image import DIR` reads. Everything here writes; nothing
here reads images back (that is the code under test).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from tests.layerkit import (dir_, file_, gzip_bytes, opaque, symlink, tar_bytes, whiteout,
                            zstd_bytes)

BUSYBOX = Path("/bin/busybox")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TYPES = {"": "application/vnd.oci.image.layer.v1.tar",
               "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
               "zstd": "application/vnd.oci.image.layer.v1.tar+zstd"}
APPLETS = ["sh", "ls", "cat", "echo", "id", "stat", "true", "sleep", "env", "pwd", "test"]


def base_layer() -> bytes:
    """busybox with a few applets, /etc, a sticky /tmp, and files the top layer deletes/hides."""
    entries = [dir_("bin"), file_("bin/busybox", BUSYBOX.read_bytes(), mode=0o755)]
    entries += [symlink(f"bin/{a}", "busybox") for a in APPLETS]
    entries += [dir_("etc"), file_("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                                                 b"app:x:1000:1000::/home/app:/bin/sh\n"),
                file_("etc/group", b"root:x:0:\napp:x:1000:\n"),
                dir_("tmp", mode=0o1777),
                dir_("data"), file_("data/keep", b"kept\n"), file_("data/gone", b"deleted above\n"),
                dir_("opaque"), file_("opaque/old1", b"1"), dir_("opaque/olddir"),
                file_("opaque/olddir/old2", b"2"),
                file_("bin/suid", b"#!/bin/sh\n", mode=0o4755, uid=0, gid=0)]
    return tar_bytes(entries)


def top_layer() -> bytes:
    """The second layer: a whiteout, an opaque directory with new content, a new file."""
    return tar_bytes([dir_("data"), whiteout("data/gone"),
                      dir_("opaque"), opaque("opaque"), file_("opaque/new", b"new\n"),
                      dir_("etc"), file_("etc/motd", b"two layers\n", uid=1000, gid=1000)])


def marker_layer(text: str) -> bytes:
    return tar_bytes([file_("arch.txt", text.encode() + b"\n")])


def random_layer(size: int, seed: int = 1) -> bytes:
    """An incompressible layer of `size` bytes (for resume tests and the benchmark)."""
    out, block, i = bytearray(), b"", 0
    while len(out) < size:
        block = hashlib.sha256(block + seed.to_bytes(4, "big") + i.to_bytes(8, "big")).digest()
        out += block * 1   # 32 bytes at a time: deterministic, compresses to ~nothing gained
        i += 1
    return tar_bytes([dir_("blob"), file_("blob/random.bin", bytes(out[:size]))])


@dataclass(frozen=True)
class Desc:
    media_type: str
    digest: str
    size: int

    def json(self, **extra) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


class OciLayout:
    """An OCI image layout directory (image-spec image-layout.md): oci-layout, index.json, blobs/."""

    def __init__(self, root: Path):
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        self.refs: list[dict] = []
        self.diff_ids: dict[str, str] = {}   # blob digest → diff_id
        self.layers_of: dict[str, list[str]] = {}   # manifest digest → layer blob digests

    def blob(self, data: bytes, media_type: str) -> Desc:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (self.root / "blobs" / "sha256" / digest[7:]).write_bytes(data)
        return Desc(media_type, digest, len(data))

    def image(self, layers: list[bytes], *, compression: str = "gzip", tag: str | None = None,
              arch: str = "amd64", config: dict | None = None) -> Desc:
        comp = {"": lambda b: b, "gzip": gzip_bytes, "zstd": zstd_bytes}[compression]
        layer_descs, diff_ids = [], []
        for tar in layers:
            d = self.blob(comp(tar), LAYER_TYPES[compression])
            layer_descs.append(d)
            diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
            self.diff_ids[d.digest] = diff_ids[-1]
        cfg = {"architecture": arch, "os": "linux",
               "config": config if config is not None else {
                   "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["cat /etc/motd"],
                   "Env": ["PATH=/bin", "GREETING=hello"], "WorkingDir": "/data", "User": "0:0",
                   "ExposedPorts": {"8080/tcp": {}}},
               "rootfs": {"type": "layers", "diff_ids": diff_ids},
               "history": [{"created_by": "tests/imagekit.py"} for _ in layers]}
        cfg_desc = self.blob(json.dumps(cfg).encode(), OCI_CONFIG)
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg_desc.json(),
                    "layers": [d.json() for d in layer_descs]}
        desc = self.blob(json.dumps(manifest).encode(), OCI_MANIFEST)
        self.layers_of[desc.digest] = [d.digest for d in layer_descs]
        if tag:
            self._tag(desc, tag)
        return desc

    def index(self, entries: list[tuple[Desc, dict, dict | None]], *, tag: str) -> Desc:
        """entries: (manifest desc, platform, annotations or None)."""
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
                 "manifests": [d.json(platform=p, **({"annotations": a} if a else {}))
                               for d, p, a in entries]}
        desc = self.blob(json.dumps(index).encode(), OCI_INDEX)
        self._tag(desc, tag)
        return desc

    def _tag(self, desc: Desc, tag: str) -> None:
        self.refs = [r for r in self.refs
                     if r.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
        self.refs.append(desc.json(annotations={"org.opencontainers.image.ref.name": tag}))
        (self.root / "index.json").write_text(json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.refs}))


@dataclass(frozen=True)
class TestImages:
    layout: Path
    two: Desc            # 2 gzip layers with whiteout + opaque dir
    zstd: Desc           # the same layers, zstd
    multi: Desc          # index: arm64, amd64 (this one is `two`'s layers + marker), attestation
    multi_amd64: Desc
    big: Desc            # busybox + an incompressible layer, for resume tests
    diff_ids: dict       # layer blob digest → diff_id
    two_layers: tuple    # blob digests of `two`'s layers
    big_layers: tuple


def build_test_images(root: Path, *, big_size: int = 6 << 20) -> TestImages:
    lay = OciLayout(root)
    base, top = base_layer(), top_layer()
    two = lay.image([base, top], tag="two")
    zstd = lay.image([base, top], compression="zstd", tag="zstd")
    amd = lay.image([base, top, marker_layer("amd64")])
    arm = lay.image([marker_layer("arm64")], arch="arm64")
    att = lay.image([marker_layer("attestation")], arch="unknown")
    multi = lay.index([(arm, {"os": "linux", "architecture": "arm64", "variant": "v8"}, None),
                       (att, {"os": "unknown", "architecture": "unknown"},
                        {"vnd.docker.reference.type": "attestation-manifest",
                         "vnd.docker.reference.digest": amd.digest}),
                       (amd, {"os": "linux", "architecture": "amd64"}, None)], tag="multi")
    big = lay.image([base, random_layer(big_size)], compression="gzip", tag="big")
    return TestImages(root, two, zstd, multi, amd, big, dict(lay.diff_ids),
                      tuple(lay.layers_of[two.digest]), tuple(lay.layers_of[big.digest]))


def chmod_tree_readable(path: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(path):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)
