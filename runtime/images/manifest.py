"""Manifests, indexes and image configs: the three JSON documents that describe an image.

    index (a.k.a. Docker manifest list)     one entry per platform: linux/amd64, linux/arm64/v8, ...
      └─► manifest                          one image: a config blob + an ordered list of layer blobs
            ├─► config                      defaults for the process (Entrypoint, Cmd, Env, ...) and
            │                               rootfs.diff_ids: the sha256 of each layer *uncompressed*
            └─► layers[0..n]                tar archives, lowest first, each gzip/zstd compressed or not

Every arrow is a *descriptor*: {mediaType, digest, size}. A reader follows the arrows and checks each
blob's digest and size against its descriptor, so one trusted digest (the one you pulled by, or the
one a tag resolved to) vouches for every byte of the image.

Two dialects exist and registries serve both: Docker's "v2 schema 2" media types and the OCI image
spec's; they are the same shape. Docker's older "schema 1" (signed JSON with embedded history) is long
deprecated and refused with a clear error.

Attestations: BuildKit pushes provenance/SBOM "images" inside the index, marked with platform
unknown/unknown and the annotation vnd.docker.reference.type=attestation-manifest. They are not
runnable and platform selection skips them.
"""

from __future__ import annotations

import json
import platform as _platform
from dataclasses import dataclass

from runtime.images.digest import check_digest
from runtime.images.errors import ManifestError

# --- media types ---------------------------------------------------------------------------------
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")

INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
#: What we send in the Accept header: without it registries fall back to schema 1 or the tag's
#: single-platform manifest.
ACCEPT = ", ".join(MANIFEST_TYPES + INDEX_TYPES)

# Layer media type → compression ("" = plain tar). Foreign/non-distributable layers are ordinary
# layers for us (we fetch them from `urls` only if the registry lacks them — we do not: see below).
LAYER_COMPRESSION = {
    "application/vnd.oci.image.layer.v1.tar": "",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
    "application/vnd.docker.image.rootfs.diff.tar": "",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
}

MAX_MANIFEST_BYTES = 4 << 20   # containerd's limit too: a manifest is metadata, never megabytes
MAX_CONFIG_BYTES = 16 << 20


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @classmethod
    def parse(cls, text: str) -> "Platform":
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ManifestError(f"platform {text!r}: want os/arch[/variant], e.g. linux/amd64")
        return cls(*parts)

    @classmethod
    def host(cls) -> "Platform":
        """This machine, in Go's GOOS/GOARCH words (which images use)."""
        machine = _platform.machine().lower()
        arch, variant = {"x86_64": ("amd64", ""), "amd64": ("amd64", ""),
                         "aarch64": ("arm64", "v8"), "arm64": ("arm64", "v8"),
                         "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"), "i686": ("386", ""),
                         "ppc64le": ("ppc64le", ""), "s390x": ("s390x", ""),
                         "riscv64": ("riscv64", "")}.get(machine, (machine, ""))
        return cls("linux", arch, variant)

    def matches(self, other: "Platform") -> bool:
        """Does an index entry for `other` run here? arm64's variant defaults to v8 (containerd's
        normalisation); elsewhere an entry without a variant matches any wanted variant."""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        norm = (lambda v: v or "v8") if self.architecture == "arm64" else (lambda v: v)
        return not other.variant or not self.variant or norm(self.variant) == norm(other.variant)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: tuple[tuple[str, str], ...] = ()
    urls: tuple[str, ...] = ()

    @property
    def is_attestation(self) -> bool:
        return (dict(self.annotations).get("vnd.docker.reference.type") == "attestation-manifest"
                or (self.platform is not None and self.platform.os == "unknown"))


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]

    def select(self, want: Platform) -> Descriptor:
        """The first runnable entry for `want` (indexes list the preferred one first)."""
        candidates = [d for d in self.manifests
                      if not d.is_attestation and d.media_type in MANIFEST_TYPES + INDEX_TYPES]
        for d in candidates:
            if d.platform is not None and want.matches(d.platform):
                return d
        have = ", ".join(str(d.platform) for d in candidates if d.platform) or "none"
        raise ManifestError(f"no image for platform {want} in the index (it has: {have})")


@dataclass(frozen=True)
class ImageConfig:
    """What the runtime needs from the config blob: process defaults and the layers' diff_ids."""

    architecture: str
    os: str
    diff_ids: tuple[str, ...]
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    stop_signal: str = ""
    variant: str = ""

    def defaults(self) -> dict:
        """The process defaults in the image-spec's own spelling (used by records and inspect)."""
        return {"Entrypoint": list(self.entrypoint), "Cmd": list(self.cmd), "Env": list(self.env),
                "WorkingDir": self.working_dir, "User": self.user,
                "ExposedPorts": list(self.exposed_ports), "Labels": dict(self.labels),
                "StopSignal": self.stop_signal}


# --- parsing -------------------------------------------------------------------------------------
def _load(raw: bytes, what: str, limit: int) -> dict:
    if len(raw) > limit:
        raise ManifestError(f"{what} is {len(raw)} bytes, more than the {limit}-byte limit")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ManifestError(f"{what} is not valid JSON: {e}") from e
    if not isinstance(doc, dict):
        raise ManifestError(f"{what} is not a JSON object")
    return doc


def _str_list(value, field_name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError(f"config field {field_name} must be a list of strings")
    return tuple(value)


def parse_descriptor(d: dict, where: str) -> Descriptor:
    if not isinstance(d, dict):
        raise ManifestError(f"{where}: descriptor is not an object")
    mt, size = d.get("mediaType"), d.get("size")
    if not isinstance(mt, str) or not mt:
        raise ManifestError(f"{where}: missing mediaType")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"{where}: size must be a non-negative integer")
    digest = check_digest(d.get("digest"), field=f"{where}.digest")
    plat = None
    if isinstance(d.get("platform"), dict):
        p = d["platform"]
        plat = Platform(str(p.get("os", "")), str(p.get("architecture", "")),
                        str(p.get("variant", "") or ""))
    ann = d.get("annotations") or {}
    return Descriptor(mt, digest, size, plat,
                      tuple(sorted((str(k), str(v)) for k, v in ann.items())),
                      tuple(str(u) for u in d.get("urls") or ()))


def media_type_of(raw: bytes, content_type: str = "") -> str:
    """The document's media type: its own `mediaType` field, else the HTTP Content-Type."""
    doc = _load(raw, "manifest", MAX_MANIFEST_BYTES)
    mt = doc.get("mediaType") or content_type.split(";")[0].strip()
    if not mt:
        # OCI allows omitting mediaType; guess from the shape.
        mt = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    return mt


def parse_manifest_or_index(raw: bytes, content_type: str = "") -> Manifest | Index:
    mt = media_type_of(raw, content_type)
    doc = _load(raw, "manifest", MAX_MANIFEST_BYTES)
    if mt in DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
        raise ManifestError("Docker schema 1 manifests are deprecated and not supported; "
                            "re-push the image with a current client")
    if doc.get("schemaVersion") != 2:
        raise ManifestError(f"manifest schemaVersion {doc.get('schemaVersion')!r}: want 2")
    if mt in INDEX_TYPES:
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise ManifestError("index has no manifests list")
        return Index(mt, tuple(parse_descriptor(d, f"manifests[{i}]") for i, d in enumerate(entries)))
    if mt in MANIFEST_TYPES:
        if not isinstance(doc.get("layers"), list):
            raise ManifestError("manifest has no layers list")
        config = parse_descriptor(doc.get("config"), "config")
        layers = tuple(parse_descriptor(d, f"layers[{i}]") for i, d in enumerate(doc["layers"]))
        for i, layer in enumerate(layers):
            if layer.media_type not in LAYER_COMPRESSION:
                raise ManifestError(f"layers[{i}]: unsupported layer media type {layer.media_type!r}")
        return Manifest(mt, config, layers)
    raise ManifestError(f"unsupported manifest media type {mt!r}")


def parse_config(raw: bytes) -> ImageConfig:
    doc = _load(raw, "image config", MAX_CONFIG_BYTES)
    rootfs = doc.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise ManifestError("image config: rootfs.type must be \"layers\"")
    diff_ids = _str_list(rootfs.get("diff_ids"), "rootfs.diff_ids")
    for i, d in enumerate(diff_ids):
        check_digest(d, field=f"rootfs.diff_ids[{i}]")
    c = doc.get("config") or {}
    if not isinstance(c, dict):
        raise ManifestError("image config: config must be an object")
    ports = c.get("ExposedPorts") or {}
    labels = c.get("Labels") or {}
    if not isinstance(ports, dict) or not isinstance(labels, dict):
        raise ManifestError("image config: ExposedPorts and Labels must be objects")
    return ImageConfig(
        architecture=str(doc.get("architecture", "")), os=str(doc.get("os", "")),
        variant=str(doc.get("variant", "") or ""), diff_ids=diff_ids,
        entrypoint=_str_list(c.get("Entrypoint"), "Entrypoint"), cmd=_str_list(c.get("Cmd"), "Cmd"),
        env=_str_list(c.get("Env"), "Env"), working_dir=str(c.get("WorkingDir") or ""),
        user=str(c.get("User") or ""), exposed_ports=tuple(sorted(ports)),
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        stop_signal=str(c.get("StopSignal") or ""))


def check_layers_match(manifest: Manifest, config: ImageConfig) -> None:
    if len(manifest.layers) != len(config.diff_ids):
        raise ManifestError(f"manifest has {len(manifest.layers)} layers but the config lists "
                            f"{len(config.diff_ids)} diff_ids")
