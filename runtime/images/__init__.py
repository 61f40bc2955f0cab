"""runtime.images — OCI images: pull from a registry, verify every byte, store layers once, unpack
them safely into directories that become overlayfs lowerdirs; import `docker save` tarballs and
OCI layouts.

Layers inside, bottom up (each uses only the ones above it in this list):

    errors        ImageError and its family: every message names the reference, blob or path
    digest        sha256 digests, hashing helpers
    reference     `busybox` → docker.io/library/busybox:latest (Docker's grammar and defaults)
    manifest      manifests, indexes, configs; media types; platform selection
    auth          credentials (config.json, Kubernetes dockerconfigjson) and WWW-Authenticate
    decompress    blob → plain tar stream: gzip/zstd sniffing, diff_id hashing, bomb cap
    unpack        the safe tar extractor (fd-relative, no symlink following, overlay whiteouts)
    fsutil        disk usage (atomic writes and tree removal: localfs)
    store         the content store on disk: blobs, unpacked layers, image records, locks, GC
    registry      the OCI distribution client (aiohttp): tokens, redirects, mirrors, resume
    pull          reference → verified, unpacked image record (concurrent layers, progress)
    archive       import of `docker save` tarballs and OCI image layouts

What the rest of the runtime uses (the narrow interface): `ImageStore.get(ref)` gives an
`ImageRecord` with `.lowerdirs` (unpacked layer directories, lowest first) and `.config`
(Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts). Importing this package is cheap: aiohttp is
imported only by `registry`, zstandard only when a zstd layer is read.

May import: localfs, the standard library, aiohttp (registry only), zstandard. Like all of runtime: never
nodeagent, network, cni, apiclient, controlplane.
"""

from runtime.images.errors import ImageError
from runtime.images.manifest import ImageConfig, Platform
from runtime.images.reference import Reference, parse_reference
from runtime.images.store import ImageRecord, ImageStore

__all__ = ["ImageConfig", "ImageError", "ImageRecord", "ImageStore", "Platform", "Reference",
           "parse_reference"]
