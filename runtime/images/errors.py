"""The errors of runtime.images. Every one names the thing a user can act on: the reference, the
registry, the blob digest or the path inside a layer.

    ImageError                 base; the CLI prints it as one line
    ├── BadReference           "busybox:" or "UPPER/case" — the text the user typed is not a reference
    ├── RegistryError          the registry answered with an error (status, OCI error code, URL)
    │   ├── AuthError          401/403 after trying the credentials we have
    │   └── NotFound           no such repository, tag or blob
    ├── ManifestError          a manifest/index/config we cannot use (bad JSON, schema 1, no platform)
    ├── DigestMismatch         bytes whose sha256 is not what the manifest or config promised
    ├── UnsafeLayer            a layer tar that tries to write outside its root, or is malformed
    │   └── LayerTooLarge      decompression bomb: more bytes or entries than the configured cap
    └── StoreError             the content store on disk (missing image, I/O failure)
"""

from __future__ import annotations


class ImageError(Exception):
    """Base error of runtime.images: a problem with an image, a registry or the image store."""


class BadReference(ImageError):
    def __init__(self, text: str, why: str):
        super().__init__(f"invalid image reference {text!r}: {why}")
        self.text = text
        self.why = why


class RegistryError(ImageError):
    def __init__(self, message: str, *, url: str = "", status: int = 0, code: str = ""):
        detail = f" (HTTP {status}{' ' + code if code else ''} from {url})" if status else ""
        super().__init__(message + detail)
        self.url = url
        self.status = status
        self.code = code


class AuthError(RegistryError):
    """The registry refused us: no credentials, wrong credentials, or no pull right on the repo."""


class NotFound(RegistryError):
    """The repository, tag or blob does not exist (HTTP 404, OCI codes MANIFEST_UNKNOWN etc.)."""


class ManifestError(ImageError):
    """A manifest, index or image config that is malformed or that we do not support."""


class DigestMismatch(ImageError):
    """Content whose digest (or size) differs from the one it was promised to have.

    `what` says which promise: "blob" (the registry's bytes vs. the manifest's descriptor) or
    "diff_id" (the uncompressed layer vs. the config's rootfs.diff_ids)."""

    def __init__(self, what: str, expected: str, actual: str, *, detail: str = ""):
        super().__init__(f"{what} {expected}: content has digest {actual}"
                         f"{' (' + detail + ')' if detail else ''}; nothing was stored")
        self.what = what
        self.expected = expected
        self.actual = actual


class UnsafeLayer(ImageError):
    """A layer archive entry we refuse to write: it would escape the layer root, or is malformed."""

    def __init__(self, layer: str, entry: str, why: str):
        super().__init__(f"layer {layer}: refusing entry {entry!r}: {why}")
        self.layer = layer
        self.entry = entry
        self.why = why


class LayerTooLarge(UnsafeLayer):
    """More uncompressed bytes or entries than the cap: a decompression bomb, or a cap set too low."""


class StoreError(ImageError):
    """The image store on disk: an image that is not there, a record we cannot read, an I/O error."""


class LayerWriteError(ImageError):
    """Writing a valid layer entry failed on this machine (no space, no privilege for a device node,
    a filesystem without xattrs). Not the layer's fault; carries the OSError."""

    def __init__(self, layer: str, entry: str, err: OSError):
        super().__init__(f"layer {layer}: cannot write {entry!r}: {err.strerror or err}")
        self.layer = layer
        self.entry = entry
        self.errno = err.errno
