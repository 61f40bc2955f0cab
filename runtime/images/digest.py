"""Content digests: the names of everything an image is made of.

An OCI digest is `algorithm:hex`, the hash of the exact bytes of a blob (a manifest, a config, a
compressed layer). Because the name *is* the hash, any copy of the bytes can be checked by anyone:
that is what lets us fetch from an untrusted mirror, a CDN we were redirected to, or a tarball on a
USB stick, and still know we have exactly what the manifest describes.

We store and accept only sha256 (what every registry and tool uses today); a sha512 descriptor gets a
clear error instead of a silent skip of verification.

`Hasher` counts and hashes bytes as they stream past; `sha256_file` hashes a file in chunks and is
meant to be run in a thread (see asyncio.to_thread at the call sites) — hashing a 100 MB layer takes
~100 ms of CPU, far too long to hold the event loop.
"""

from __future__ import annotations

import hashlib
import re

from runtime.images.errors import ManifestError

_SHA256 = re.compile(r"sha256:[a-f0-9]{64}")
_ANY = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
CHUNK = 1 << 20


def check_digest(text: str, *, field: str = "digest") -> str:
    """Return `text` if it is a sha256 digest; else raise ManifestError naming `field`."""
    if not isinstance(text, str) or not _SHA256.fullmatch(text):
        if isinstance(text, str) and _ANY.fullmatch(text):
            raise ManifestError(f"{field} {text!r}: only sha256 digests are supported")
        raise ManifestError(f"{field} {text!r} is not a digest (want sha256:<64 hex digits>)")
    return text


def hex_of(digest: str) -> str:
    """The hex part of a checked digest: the file name under blobs/sha256/ and layers/."""
    return check_digest(digest)[len("sha256:"):]


def sha256_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha256_file(path, *, limit: int | None = None) -> tuple[str, int]:
    """(digest, size) of the first `limit` bytes (all when None) of the file. Blocking: run in a thread."""
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while limit is None or n < limit:
            chunk = f.read(CHUNK if limit is None else min(CHUNK, limit - n))
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
    return "sha256:" + h.hexdigest(), n


class Hasher:
    """sha256 and byte count of everything passed to update()."""

    __slots__ = ("_h", "size")

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes) -> None:
        self._h.update(data)
        self.size += len(data)

    def digest(self) -> str:
        return "sha256:" + self._h.hexdigest()
