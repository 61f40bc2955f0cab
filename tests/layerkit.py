"""Build layer tarballs for tests, entry by entry — including the hostile ones no tool would write.

    tar_bytes([dir_("etc"), file_("etc/hosts", b"..."), symlink("lib", "/etc"), file_("lib/x")])

Uses tarfile only to *write* archives (the code under test reads them with its own rules).
"""

from __future__ import annotations

import gzip
import io
import tarfile


def _info(name: str, type_: bytes, *, mode: int = 0o644, uid: int = 0, gid: int = 0,
          mtime: float = 1_700_000_000, linkname: str = "", size: int = 0,
          xattrs: dict[str, bytes] | None = None, devmajor: int = 0, devminor: int = 0):
    ti = tarfile.TarInfo(name)
    ti.type = type_
    ti.mode, ti.uid, ti.gid, ti.mtime, ti.linkname, ti.size = mode, uid, gid, mtime, linkname, size
    ti.devmajor, ti.devminor = devmajor, devminor
    if xattrs:
        ti.pax_headers = {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape")
                          for k, v in xattrs.items()}
    return ti


def file_(name, data: bytes = b"", **kw):
    return _info(name, tarfile.REGTYPE, size=len(data), **kw), data


def dir_(name, **kw):
    kw.setdefault("mode", 0o755)
    return _info(name, tarfile.DIRTYPE, **kw), None


def symlink(name, target, **kw):
    kw.setdefault("mode", 0o777)
    return _info(name, tarfile.SYMTYPE, linkname=target, **kw), None


def hardlink(name, target, **kw):
    return _info(name, tarfile.LNKTYPE, linkname=target, **kw), None


def chardev(name, major, minor, **kw):
    return _info(name, tarfile.CHRTYPE, devmajor=major, devminor=minor, **kw), None


def fifo(name, **kw):
    return _info(name, tarfile.FIFOTYPE, **kw), None


def whiteout(name):
    """`.wh.<base>` for `name` (a path), as docker/buildkit write them: an empty regular file."""
    head, _, base = name.rpartition("/")
    return file_(f"{head}/.wh.{base}" if head else f".wh.{base}")


def opaque(dirname):
    return file_(f"{dirname}/.wh..wh..opq")


def tar_bytes(entries) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in entries:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def zstd_bytes(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(data)
