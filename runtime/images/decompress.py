"""The byte stream of a layer: compressed blob → plain tar, hashed and capped on the way.

A layer blob is a tar archive, optionally gzip- or zstd-compressed. The manifest's media type says
which, but registries and old tools have been known to mislabel (a "tar.gzip" that is plain tar), so,
like containerd, we look at the first bytes: 1f 8b is gzip, 28 b5 2f fd is zstd, else plain tar.

`LayerStream` is a file-like object that tarfile reads from. Everything that comes out of the
decompressor passes through it once, which is where we
- compute the diff_id: the sha256 of the *uncompressed* tar, which the image config promises
  (rootfs.diff_ids) — a second, independent check after the blob digest of the compressed bytes;
- enforce the size cap: a 10 MB gzip of zeros inflates to 10 GB. We count bytes as they are
  produced and stop at the cap, so a bomb costs us at most `cap` bytes of work, never disk or RAM.
read(n) never returns more than n bytes, and both decompressors produce output incrementally, so
memory stays at about one buffer whatever the ratio.
"""

from __future__ import annotations

import gzip
import zlib
from typing import BinaryIO

from runtime.images.digest import Hasher
from runtime.images.errors import LayerTooLarge, UnsafeLayer

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def sniff(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return ""


class LayerStream:
    """Decompressed, hashed, size-capped reader over an open compressed blob. Owns nothing: the
    caller closes `raw`."""

    def __init__(self, raw: BinaryIO, *, layer: str, max_bytes: int):
        self.layer = layer
        self.max_bytes = max_bytes
        self.hasher = Hasher()
        head = raw.peek(4)[:4] if hasattr(raw, "peek") else b""
        self.compression = sniff(head)
        if self.compression == "gzip":
            self._inner: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb")
        elif self.compression == "zstd":
            import zstandard   # imported only for zstd layers

            self._inner = zstandard.ZstdDecompressor().stream_reader(
                raw, read_size=1 << 20, read_across_frames=True)
        else:
            self._inner = raw

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = 1 << 20
        try:
            data = self._inner.read(n)
        except (OSError, EOFError, zlib.error) as e:
            raise UnsafeLayer(self.layer, "", f"corrupt {self.compression or 'tar'} stream: {e}") from e
        except Exception as e:   # zstandard.ZstdError has no common base with the above
            if type(e).__name__ == "ZstdError":
                raise UnsafeLayer(self.layer, "", f"corrupt zstd stream: {e}") from e
            raise
        self.hasher.update(data)
        if self.hasher.size > self.max_bytes:
            raise LayerTooLarge(self.layer, "", f"more than {self.max_bytes} bytes uncompressed "
                                "(decompression bomb, or raise the layer size cap)")
        return data

    def drain(self) -> None:
        """Read to the end: tarfile stops at the end-of-archive marker, but the diff_id covers
        every byte, including the zero padding after it."""
        while self.read(1 << 20):
            pass
