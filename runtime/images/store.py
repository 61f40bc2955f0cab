"""The image store on disk: blobs by digest, unpacked layers by diff_id, image records by name.

    <root>/                      (0700: layers hold setuid binaries and device nodes; only root enters)
      blobs/sha256/<hex>         verified blobs: manifests, indexes, configs (and layer blobs while
                                 they wait to be unpacked)
      ingest/<hex>.partial       downloads in progress; a later pull resumes them with a Range request
      layers/sha256/<hex>/       one per diff_id, shared by every image that has that layer:
          root/                    the unpacked tree — an overlayfs lowerdir
          layer.json               {diff_id, blob digest, media type, disk usage}
      images/<name>.json         image records: name → manifest → config defaults + layers
      tmp/                       unpacks in progress (renamed into layers/ when verified)
      locks/                     flock files: one per blob/layer being fetched, and gc.lock

Every publication is a rename of something complete and verified (localfs.write_atomic; a whole
unpacked directory renamed from tmp/), so a crash or a kill leaves either nothing or the finished
thing — plus, at most, an ingest partial that the next pull resumes and garbage in tmp/ that GC
clears.

Concurrency. Two pulls of images sharing a layer (in one agent, or two `nodeagent pull` processes)
must fetch and unpack it once. `locked(key)` takes a per-key asyncio.Lock (tasks in this process)
and then an flock on locks/<key>.lock (other processes); whoever gets it second re-checks and finds
the work done. flock is polled with LOCK_NB so that waiting never blocks the event loop and a
cancelled waiter never leaves a thread holding a lock. Pulls hold gc.lock shared; GC takes it
exclusive, so it never deletes a layer a running pull has unpacked but not yet recorded.

Layer blobs are deleted once their layer is unpacked and verified (the unpacked tree is what
containers use; keeping both would double the disk use, as Docker's graph drivers also decided).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import secrets
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from runtime.images.digest import hex_of, sha256_bytes
from runtime.images.errors import DigestMismatch, ImageError, StoreError
from localfs import fsync_dir, publish, remove_tree, write_atomic
from runtime.images.fsutil import disk_usage
from runtime.images.manifest import ImageConfig, parse_config
from runtime.images.reference import Reference, parse_reference
from runtime.images.unpack import DEFAULT_MAX_BYTES, unpack_layer

DEFAULT_ROOT = Path("/var/lib/nodeagent/images")


@dataclass(frozen=True)
class LayerRef:
    digest: str        # the (compressed) blob in the manifest
    diff_id: str       # sha256 of the uncompressed tar, from the config
    media_type: str
    size: int          # compressed size


@dataclass(frozen=True)
class ImageRecord:
    """One named image. `lowerdirs` are the unpacked layers, LOWEST FIRST (overlayfs's lowerdir=
    option wants them the other way round: top-most first — the runtime reverses)."""

    name: str
    manifest_digest: str
    config_digest: str
    layers: tuple[LayerRef, ...]
    config: ImageConfig
    platform: str = ""
    index_digest: str | None = None
    created: float = 0.0
    lowerdirs: tuple[Path, ...] = field(default=(), compare=False)

    @property
    def id(self) -> str:
        """Docker's image ID: the config digest."""
        return self.config_digest

    def to_json(self) -> dict:
        return {"name": self.name, "manifestDigest": self.manifest_digest,
                "configDigest": self.config_digest, "indexDigest": self.index_digest,
                "platform": self.platform, "created": self.created,
                "layers": [{"digest": lr.digest, "diffID": lr.diff_id, "mediaType": lr.media_type,
                            "size": lr.size} for lr in self.layers]}


@dataclass(frozen=True)
class GcReport:
    blobs: int = 0
    layers: int = 0
    partials: int = 0
    freed_bytes: int = 0


@dataclass(frozen=True)
class Usage:
    images: int
    layers: int
    layer_bytes: int
    blob_bytes: int
    ingest_bytes: int
    reclaimable_bytes: int   # what gc() would free now


def _record_file_name(name: str) -> str:
    return urllib.parse.quote(name, safe="") + ".json"


class ImageStore:
    def __init__(self, root: str | os.PathLike = DEFAULT_ROOT, *, owners: bool | None = None,
                 max_layer_bytes: int = DEFAULT_MAX_BYTES):
        self.root = Path(root)
        # Keep the layer's uid/gid only when we can (root); unprivileged stores (tests, rootless
        # experiments) keep files as our own user.
        self.owners = os.geteuid() == 0 if owners is None else owners
        self.max_layer_bytes = max_layer_bytes
        self.blobs = self.root / "blobs" / "sha256"
        self.ingest = self.root / "ingest"
        self.layers = self.root / "layers" / "sha256"
        self.images = self.root / "images"
        self.tmp = self.root / "tmp"
        self.locks = self.root / "locks"
        self._locks: dict[str, asyncio.Lock] = {}
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            os.chmod(self.root, 0o700)
            for d in (self.blobs, self.ingest, self.layers, self.images, self.tmp, self.locks):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the image store at {self.root}: {e.strerror}") from e

    # --- blobs ---------------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.blobs / hex_of(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"blob {digest} is not in the store") from None

    def put_blob(self, digest: str, data: bytes) -> None:
        """Store a small blob (manifest, config) after checking it is what `digest` names."""
        actual = sha256_bytes(data)
        if actual != digest:
            raise DigestMismatch("blob", digest, actual)
        if not self.has_blob(digest):
            write_atomic(self.blob_path(digest), data)

    def ingest_path(self, digest: str) -> Path:
        return self.ingest / f"{hex_of(digest)}.partial"

    def commit_ingest(self, digest: str) -> None:
        """Publish a finished, verified download (the caller checked its digest while streaming)."""
        publish(self.ingest_path(digest), self.blob_path(digest))

    def import_blob(self, digest: str, src, size: int | None = None, *, origin: str = "") -> None:
        """Copy a blob from an open file (a member of an archive being imported), verifying its
        digest and size before it is published. Blocking."""
        if self.has_blob(digest):
            return
        tmp = self.ingest / f"{hex_of(digest)}.import-{secrets.token_hex(4)}"
        try:
            actual, n = _copy_hashing(src, tmp)
            if actual != digest or (size is not None and n != size):
                raise DigestMismatch("blob", digest, actual, detail=f"{n} bytes from {origin}"
                                     + (f", expected {size}" if size is not None else ""))
            publish(tmp, self.blob_path(digest))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    # --- layers --------------------------------------------------------------------------------------
    def layer_dir(self, diff_id: str) -> Path:
        return self.layers / hex_of(diff_id)

    def has_layer(self, diff_id: str) -> bool:
        return (self.layer_dir(diff_id) / "layer.json").is_file()

    def unpack_blob(self, layer: LayerRef, *, delete_blob: bool = True) -> None:
        """Unpack the stored blob of `layer` into layers/, verifying its diff_id. Blocking (tar
        extraction and hashing): the caller runs it in a thread, holding the layer's lock."""
        if self.has_layer(layer.diff_id):
            return
        work = self.tmp / f"unpack-{hex_of(layer.diff_id)[:12]}-{secrets.token_hex(4)}"
        work.mkdir(mode=0o700)
        try:
            result = unpack_layer(self.blob_path(layer.digest), work / "root", layer=layer.digest,
                                  expected_diff_id=layer.diff_id, max_bytes=self.max_layer_bytes,
                                  owners=self.owners)
            meta = {"diffID": layer.diff_id, "digest": layer.digest, "mediaType": layer.media_type,
                    "tarSize": result.tar_size, "entries": result.entries,
                    "diskUsage": disk_usage(work / "root"), "unpacked": time.time()}
            write_atomic(work / "layer.json", json.dumps(meta, indent=1).encode())
            os.rename(work, self.layer_dir(layer.diff_id))
            fsync_dir(self.layers)
        except BaseException:
            remove_tree(work)
            raise
        if delete_blob:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.blob_path(layer.digest))

    def layer_usage(self, diff_id: str) -> int:
        try:
            return json.loads((self.layer_dir(diff_id) / "layer.json").read_text())["diskUsage"]
        except (OSError, ValueError, KeyError):
            return 0

    # --- image records -------------------------------------------------------------------------------
    def put_image(self, rec: ImageRecord) -> ImageRecord:
        missing = [lr.diff_id for lr in rec.layers if not self.has_layer(lr.diff_id)]
        if missing or not self.has_blob(rec.config_digest) or not self.has_blob(rec.manifest_digest):
            raise StoreError(f"image {rec.name}: content missing from the store ({missing or 'config'})")
        write_atomic(self.images / _record_file_name(rec.name), json.dumps(rec.to_json(), indent=1).encode())
        return self._load(self.images / _record_file_name(rec.name))

    def _load(self, path: Path) -> ImageRecord:
        try:
            doc = json.loads(path.read_text())
            layers = tuple(LayerRef(x["digest"], x["diffID"], x["mediaType"], x["size"])
                           for x in doc["layers"])
            config = parse_config(self.read_blob(doc["configDigest"]))
            return ImageRecord(
                name=doc["name"], manifest_digest=doc["manifestDigest"],
                config_digest=doc["configDigest"], layers=layers, config=config,
                platform=doc.get("platform", ""), index_digest=doc.get("indexDigest"),
                created=doc.get("created", 0.0),
                lowerdirs=tuple(self.layer_dir(lr.diff_id) / "root" for lr in layers))
        except (OSError, ValueError, KeyError, TypeError, ImageError) as e:
            raise StoreError(f"image record {path.name} is unreadable: {e}") from e

    def list(self) -> list[ImageRecord]:
        return sorted((self._load(p) for p in self.images.glob("*.json")), key=lambda r: r.name)

    def resolve_name(self, text: str) -> str:
        """What a user typed → the record name: a reference (`busybox` means
        docker.io/library/busybox:latest), an image ID or manifest digest, or a unique ID prefix."""
        if (self.images / _record_file_name(text)).is_file():
            return text
        hexpart = text.removeprefix("sha256:")
        if len(hexpart) >= 4 and all(c in "0123456789abcdef" for c in hexpart):
            hits = {r.name for r in self.list()
                    if hex_of(r.config_digest).startswith(hexpart)
                    or hex_of(r.manifest_digest).startswith(hexpart)}
            if len(hits) == 1:
                return hits.pop()
            if len(hits) > 1:
                raise StoreError(f"image ID {text!r} is ambiguous: {', '.join(sorted(hits))}")
        ref = parse_reference(text)
        if not (self.images / _record_file_name(str(ref))).is_file() and ref.digest:
            # `repo@sha256:...` also finds the image pulled by tag whose manifest is that digest.
            for r in self.list():
                if r.manifest_digest == ref.digest and parse_reference(r.name).name == ref.name:
                    return r.name
        return str(ref)

    def get(self, ref: str | Reference) -> ImageRecord:
        """The image record the runtime builds a rootfs from. StoreError if it is not here."""
        name = str(ref) if isinstance(ref, Reference) else self.resolve_name(ref)
        path = self.images / _record_file_name(name)
        if not path.is_file():
            raise StoreError(f"image {name} is not in the store (pull or import it first)")
        return self._load(path)

    def remove(self, ref: str) -> ImageRecord:
        """Drop a name. Its layers stay until gc() finds nothing else uses them."""
        rec = self.get(ref)
        os.unlink(self.images / _record_file_name(rec.name))
        return rec

    # --- garbage collection and accounting ---------------------------------------------------------
    def _roots(self, keep_layers) -> tuple[set[str], set[str]]:
        blobs, layers = set(), {hex_of(d) for d in keep_layers}
        for rec in self.list():
            blobs.update(hex_of(d) for d in (rec.manifest_digest, rec.config_digest, rec.index_digest) if d)
            layers.update(hex_of(lr.diff_id) for lr in rec.layers)
        return blobs, layers

    def gc(self, keep_layers=(), *, partial_age: float = 3600.0) -> GcReport:
        """Delete blobs and layers no image record refers to, except `keep_layers` (diff_ids of
        layers in use by containers: the agent passes them), leftovers of crashed unpacks, and
        download partials older than `partial_age` seconds. Blocking; take gc_lock() around it."""
        blob_roots, layer_roots = self._roots(keep_layers)
        n_blobs = n_layers = n_partials = freed = 0
        for p in self.blobs.iterdir():
            if p.name not in blob_roots and not p.name.startswith("."):
                freed += disk_usage(p)
                p.unlink()
                n_blobs += 1
        for p in self.layers.iterdir():
            if p.name not in layer_roots:
                freed += disk_usage(p)
                remove_tree(p)
                n_layers += 1
        now = time.time()
        for p in self.ingest.iterdir():
            if now - p.stat().st_mtime > partial_age:
                freed += disk_usage(p)
                p.unlink()
                n_partials += 1
        for p in self.tmp.iterdir():
            freed += disk_usage(p)
            remove_tree(p)
        return GcReport(n_blobs, n_layers, n_partials, freed)

    def usage(self) -> Usage:
        blob_roots, layer_roots = self._roots(())
        layer_bytes = reclaim = 0
        n_layers = 0
        for p in self.layers.iterdir():
            size = self.layer_usage("sha256:" + p.name) or disk_usage(p)
            layer_bytes += size
            n_layers += 1
            if p.name not in layer_roots:
                reclaim += size
        blob_bytes = 0
        for p in self.blobs.iterdir():
            size = disk_usage(p)
            blob_bytes += size
            if p.name not in blob_roots:
                reclaim += size
        ingest = sum(disk_usage(p) for p in self.ingest.iterdir())
        return Usage(len(list(self.images.glob("*.json"))), n_layers, layer_bytes, blob_bytes,
                     ingest, reclaim)

    # --- locks ---------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def locked(self, key: str, *, shared: bool = False, poll: float = 0.05):
        """Hold `key` against other tasks here and other processes (see the module docstring)."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with contextlib.AsyncExitStack() as stack:
            if not shared:
                await stack.enter_async_context(lock)
            fd = os.open(self.locks / f"{key}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            stack.callback(os.close, fd)   # closing the fd releases the flock
            mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
            while True:
                try:
                    fcntl.flock(fd, mode)
                    break
                except BlockingIOError:
                    await asyncio.sleep(poll)
            yield

    def gc_lock(self, *, shared: bool) -> "contextlib.AbstractAsyncContextManager":
        return self.locked("gc", shared=shared)


def _copy_hashing(src, dst: Path) -> tuple[str, int]:
    import hashlib

    h, n = hashlib.sha256(), 0
    with open(dst, "xb") as fo:
        while chunk := src.read(1 << 20):
            h.update(chunk)
            fo.write(chunk)
            n += len(chunk)
        fo.flush()
        os.fsync(fo.fileno())
    return "sha256:" + h.hexdigest(), n


__all__ = ["DEFAULT_ROOT", "GcReport", "ImageRecord", "ImageStore", "LayerRef", "Usage"]
