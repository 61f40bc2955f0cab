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


def blockdev(name, major, minor, **kw):
    return _info(name, tarfile.BLKTYPE, devmajor=major, devminor=minor, **kw), None


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


# --- the hostile-layer suite ---------------------------------------------------------------------------
# Each case tries to write to (or through) `outside`, a directory next to the layer holding a canary.
HOSTILE = {
    "dotdot": lambda o: [file_("../outside/canary", b"pwned")],
    "dotdot-deep": lambda o: [dir_("a"), file_("a/../../outside/canary", b"pwned")],
    "absolute": lambda o: [file_(f"{o}/canary", b"pwned")],
    "symlink-dir-traversal": lambda o: [symlink("lib", str(o)), file_("lib/canary", b"pwned")],
    "symlink-relative-traversal": lambda o: [symlink("up", ".."), file_("up/outside/canary", b"pwned")],
    "symlink-chain": lambda o: [dir_("a"), symlink("a/b", "../.."), file_("a/b/outside/canary", b"x")],
    "symlink-then-dir": lambda o: [symlink("d", str(o)), dir_("d/sub")],
    "hardlink-out-dotdot": lambda o: [hardlink("h", "../outside/canary")],
    "hardlink-out-absolute": lambda o: [hardlink("h", f"{o}/canary")],
    "hardlink-through-symlink": lambda o: [symlink("s", str(o)), hardlink("h", "s/canary")],
    "hardlink-missing-target": lambda o: [hardlink("h", "nope")],
    "symlink-named-dot": lambda o: [symlink(".", str(o)), file_("canary", b"pwned")],
    "symlink-named-dot-in-dir": lambda o: [dir_("a"), symlink("a/.", str(o))],
    "bare-whiteout": lambda o: [file_(".wh.", b"")],
    "whiteout-dotdot": lambda o: [file_("a/.wh...", b"")],
    "whiteout-through-symlink": lambda o: [symlink("s", str(o)), whiteout("s/canary")],
    "opaque-through-symlink": lambda o: [symlink("s", str(o)), opaque("s")],
    "overlay-xattr-forgery": lambda o: [file_("f", b"", xattrs={"trusted.overlay.redirect": b"/x"})],
    "file-under-a-file": lambda o: [file_("f", b"x"), file_("f/g", b"y")],
}


def canary_intact(outside) -> None:
    """`outside` still holds exactly the canary file, unchanged, and nothing appeared beside it."""
    import os

    assert sorted(os.listdir(outside)) == ["canary"]
    assert (outside / "canary").read_bytes() == b"canary"
    assert not (outside.parent / "canary").exists()
