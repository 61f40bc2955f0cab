"""Safe unpacking of one layer tar into its own directory, in overlayfs's on-disk format.

A layer is untrusted input. Extraction is the classic place where container tools let an image write
to the host: `../../etc/cron.d/x`, an absolute `/etc/passwd`, or — the subtle one — a symlink
`lib -> /etc` followed by an entry `lib/passwd`, which a naive `open(root + "/lib/passwd")` follows
out of the root (CVE-2018-15664-style bugs in Docker, CVE-2021-30465 in runc's mounts, the tarfile
filter bypasses of 2023–2025). So we never hand a whole path to the kernel. Every entry is resolved
one component at a time from an open fd of the layer root:

    root_fd ──openat("usr", O_DIRECTORY|O_NOFOLLOW)──► fd ──openat("bin", ...)──► fd ──create "sh"

With O_NOFOLLOW a symlink anywhere along the way is an error (ELOOP/ENOTDIR), never a detour, and the
final component is created relative to its parent's fd with the *at() calls (mkdirat, symlinkat,
linkat, mknodat), which do not follow it either. Names are checked before any of that: no absolute
paths, no `..`, no `.` except a leading `./`, nothing that would replace the root itself (a symlink
named `.`). Hardlink targets go through the same walk and must already exist in this layer.

What is kept, because images rely on it: owners (uid/gid), all mode bits including setuid/setgid/
sticky (chmod after chown — chown clears setuid), device nodes and FIFOs, symlinks with any target
(they are only followed later, inside the container's root), xattrs from PAX `SCHILY.xattr.*`
records (file capabilities like `security.capability` on ping), and mtimes (directories' last, since
creating children changes them). Xattrs in `trusted.overlay.*` are refused: they would let a layer
forge overlay metadata.

Whiteouts (image-spec layer.md, "Whiteouts"). A layer deletes a lower layer's file X by carrying an
empty entry `.wh.X` next to where X was, and hides *all* of a directory's lower content with
`.wh..wh..opq` inside it. overlayfs spells both differently, so we translate while unpacking:

    .wh.X           →  X as a character device 0:0        (overlay's whiteout)
    D/.wh..wh..opq  →  xattr trusted.overlay.opaque="y" on D   (overlay's opaque directory)

The spec says a whiteout applies only to *lower* layers: an X that this same layer also carries is
kept (it hides the lower X anyway), in whichever order the two entries come. An opaque xattr hides
only lower layers' entries in overlayfs, never D's own entries in this layer — so applying it when we
meet the marker is the same as the spec's "opaque before the layer's own entries". Creating 0:0
devices and trusted.* xattrs needs root (CAP_MKNOD, CAP_SYS_ADMIN), like the overlay mount itself.

Limits: `max_bytes` of uncompressed tar (decompress.LayerStream) and `max_entries` entries — a bomb
is stopped early, and the half-written directory is removed by the caller's cleanup (unpack_layer).
This is blocking code (it does the I/O): call it from a worker thread, never on the event loop.
"""

from __future__ import annotations

import collections
import errno
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from runtime.images.decompress import LayerStream
from localfs import remove_tree
from runtime.images.errors import (DigestMismatch, ImageError, LayerTooLarge, LayerWriteError,
                                   UnsafeLayer)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
DEFAULT_MAX_BYTES = 16 << 30
DEFAULT_MAX_ENTRIES = 1_000_000
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_SUPPORTED = {tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE, tarfile.GNUTYPE_SPARSE,
              tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE,
              tarfile.FIFOTYPE}


@dataclass(frozen=True)
class UnpackResult:
    diff_id: str        # sha256 of the uncompressed tar
    tar_size: int       # its size in bytes
    entries: int
    compression: str    # what the bytes turned out to be: "gzip", "zstd" or "" (plain tar)


def split_entry(name: str, layer: str) -> list[str]:
    """The components of an entry name, or UnsafeLayer. [] is the layer root itself ("./")."""
    if "\x00" in name:
        raise UnsafeLayer(layer, name, "NUL byte in name")
    if name.startswith("/"):
        raise UnsafeLayer(layer, name, "absolute path")
    parts: list[str] = []
    for comp in name.split("/"):
        if comp == "":
            continue
        if comp == "." and not parts:
            continue          # "./etc/passwd": the way `tar -C dir .` names things
        if comp in (".", ".."):
            raise UnsafeLayer(layer, name, f"'{comp}' path component")
        parts.append(comp)
    return parts


class _DirCache:
    """Open fds of directories already resolved, by relative path (bounded LRU; owns the fds).
    Resolving `usr/lib/x86_64-linux-gnu/...` for each of thousands of entries would otherwise
    re-open every ancestor every time."""

    def __init__(self, limit: int = 128):
        self.limit = limit
        self._fds: collections.OrderedDict[str, int] = collections.OrderedDict()

    def get(self, key: str) -> int | None:
        fd = self._fds.get(key)
        if fd is not None:
            self._fds.move_to_end(key)
        return fd

    def put(self, key: str, fd: int) -> None:
        self._fds[key] = fd
        while len(self._fds) > self.limit:
            os.close(self._fds.popitem(last=False)[1])

    def forget(self, key: str) -> None:
        """`key` is being removed or replaced: drop it and everything under it."""
        for k in [k for k in self._fds if k == key or k.startswith(key + "/")]:
            os.close(self._fds.pop(k))

    def close(self) -> None:
        while self._fds:
            os.close(self._fds.popitem()[1])


class LayerWriter:
    """Applies tar entries under `root` (an existing, empty directory we own). Not thread-safe: one
    writer per layer, used by one thread. Call close() (unpack_layer does)."""

    def __init__(self, root: Path, layer: str, *, owners: bool = True):
        self.layer = layer
        self.owners = owners
        self.root_fd = os.open(root, _DIR_FLAGS)
        self._dirs = _DirCache()
        self._dir_times: list[tuple[list[str], int]] = []
        self._whiteouts: set[str] = set()   # paths that are whiteout devices we made

    def close(self) -> None:
        self._dirs.close()
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1

    # --- resolving paths ---------------------------------------------------------------------------
    def _walk(self, parts: list[str], entry: str, *, create: bool) -> int:
        """fd of the directory `parts` (relative to the root), never following a symlink. With
        `create`, missing directories are made (0755, like `mkdir -p`). Borrowed fd: do not close."""
        fd = self.root_fd
        for i, comp in enumerate(parts):
            key = "/".join(parts[:i + 1])
            cached = self._dirs.get(key)
            if cached is not None:
                fd = cached
                continue
            try:
                child = os.open(comp, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise UnsafeLayer(self.layer, entry, f"{key!r} does not exist in this layer") from None
                try:
                    os.mkdir(comp, 0o755, dir_fd=fd)
                    child = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                    os.fchmod(child, 0o755)   # not subject to the umask
                except OSError as e:
                    raise LayerWriteError(self.layer, entry, e) from e
            except OSError as e:
                if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise LayerWriteError(self.layer, entry, e) from e
                st = os.stat(comp, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    raise UnsafeLayer(self.layer, entry, f"path goes through symlink {key!r}") from None
                raise UnsafeLayer(self.layer, entry, f"{key!r} is not a directory") from None
            self._dirs.put(key, child)
            fd = child
        return fd

    def _clear(self, pfd: int, parts: list[str], *, keep_dir: bool) -> tuple[bool, bool]:
        """Make room for a new entry at parts[-1]. Returns (kept an existing directory, replaced a
        whiteout device). An existing directory stays when the new entry is a directory too (its
        contents and metadata merge, as tar does); anything else is removed first."""
        name, key = parts[-1], "/".join(parts)
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return False, False
        if keep_dir and stat.S_ISDIR(st.st_mode):
            return True, False
        self._dirs.forget(key)
        was_whiteout = key in self._whiteouts
        self._whiteouts.discard(key)
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=pfd)   # fd-based and symlink-safe since Python 3.11
            self._whiteouts = {w for w in self._whiteouts if not w.startswith(key + "/")}
        else:
            os.unlink(name, dir_fd=pfd)
        return False, was_whiteout

    # --- applying entries --------------------------------------------------------------------------
    def apply(self, m: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        if m.type not in _SUPPORTED:
            raise UnsafeLayer(self.layer, m.name, f"unsupported tar entry type {m.type!r}")
        parts = split_entry(m.name, self.layer)
        if not parts:
            if not m.isdir():
                raise UnsafeLayer(self.layer, m.name, "entry would replace the layer root")
            self._metadata_fd(self.root_fd, m)
            self._dir_times.append(([], _ns(m.mtime)))
            return
        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            return self._whiteout(parts, m)
        pfd = self._walk(parts[:-1], m.name, create=True)
        try:
            if m.isdir():
                self._dir(pfd, parts, m)
            elif m.islnk():
                self._hardlink(pfd, parts, m)
            else:
                self._clear(pfd, parts, keep_dir=False)
                if m.isreg():
                    self._file(pfd, base, m, tar)
                elif m.issym():
                    self._symlink(pfd, base, m)
                else:
                    self._node(pfd, base, m)
        except OSError as e:
            raise LayerWriteError(self.layer, m.name, e) from e

    def _whiteout(self, parts: list[str], m: tarfile.TarInfo) -> None:
        base = parts[-1]
        if m.isdir() and base != OPAQUE_MARKER:
            raise UnsafeLayer(self.layer, m.name, "a whiteout must not be a directory")
        pfd = self._walk(parts[:-1], m.name, create=True)
        try:
            if base == OPAQUE_MARKER:
                os.setxattr(pfd, OPAQUE_XATTR, b"y")
                return
            if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
                return    # other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): nothing to do in overlay
            target = base[len(WHITEOUT_PREFIX):]
            if target in ("", ".", ".."):
                raise UnsafeLayer(self.layer, m.name, "whiteout of nothing (bare '.wh.')"
                                  if not target else f"whiteout of {target!r}")
            try:
                os.stat(target, dir_fd=pfd, follow_symlinks=False)
                return    # this layer has its own `target`: it already hides the lower one
            except FileNotFoundError:
                pass
            os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=pfd)
            self._whiteouts.add("/".join(parts[:-1] + [target]))
        except OSError as e:
            raise LayerWriteError(self.layer, m.name, e) from e

    def _dir(self, pfd: int, parts: list[str], m: tarfile.TarInfo) -> None:
        kept, was_whiteout = self._clear(pfd, parts, keep_dir=True)
        if not kept:
            os.mkdir(parts[-1], 0o700, dir_fd=pfd)
        fd = self._walk(parts, m.name, create=False)
        if was_whiteout:
            # Deleting a lower directory and creating a new one in the same layer means "this
            # directory, without the lower contents": overlay's own rmdir+mkdir marks it opaque too.
            os.setxattr(fd, OPAQUE_XATTR, b"y")
        self._metadata_fd(fd, m)
        self._dir_times.append((parts, _ns(m.mtime)))

    def _file(self, pfd: int, name: str, m: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=pfd)
        try:
            src = tar.extractfile(m)
            if src is not None:
                while chunk := src.read(1 << 20):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
            self._metadata_fd(fd, m)
            t = _ns(m.mtime)
            os.utime(fd, ns=(t, t))
        finally:
            os.close(fd)

    def _symlink(self, pfd: int, name: str, m: tarfile.TarInfo) -> None:
        if not m.linkname:
            raise UnsafeLayer(self.layer, m.name, "symlink with an empty target")
        os.symlink(m.linkname, name, dir_fd=pfd)
        self._metadata_path(pfd, name, m, chmod=False)

    def _node(self, pfd: int, name: str, m: tarfile.TarInfo) -> None:
        """Character/block devices and FIFOs. Never opened: opening a device or FIFO has effects."""
        if m.isfifo():
            os.mkfifo(name, 0o600, dir_fd=pfd)
        else:
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(name, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
        self._metadata_path(pfd, name, m, chmod=True)

    def _hardlink(self, pfd: int, parts: list[str], m: tarfile.TarInfo) -> None:
        try:
            target = split_entry(m.linkname, self.layer)
        except UnsafeLayer as e:
            raise UnsafeLayer(self.layer, m.name, f"hardlink target {m.linkname!r}: {e.why}") from None
        if not target:
            raise UnsafeLayer(self.layer, m.name, "hardlink to the layer root")
        if target == parts:
            return    # a link to itself: tar writes these for files added twice; nothing to do
        # Our own reference to the target's directory: walking it may evict `pfd` from the cache
        # (and the other way round), so re-resolve `pfd` afterwards and hold `tfd` by a dup.
        tfd = os.dup(self._walk(target[:-1], m.name, create=False))
        try:
            try:
                st = os.stat(target[-1], dir_fd=tfd, follow_symlinks=False)
            except FileNotFoundError:
                raise UnsafeLayer(self.layer, m.name,
                                  f"hardlink target {m.linkname!r} is not in this layer") from None
            if stat.S_ISDIR(st.st_mode):
                raise UnsafeLayer(self.layer, m.name, f"hardlink to directory {m.linkname!r}")
            pfd = self._walk(parts[:-1], m.name, create=True)
            self._clear(pfd, parts, keep_dir=False)
            os.link(target[-1], parts[-1], src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(tfd)

    # --- metadata ----------------------------------------------------------------------------------
    def _xattrs(self, m: tarfile.TarInfo) -> list[tuple[str, bytes]]:
        out = []
        for key, value in m.pax_headers.items():
            if not key.startswith("SCHILY.xattr."):
                continue
            name = key[len("SCHILY.xattr."):]
            if name.startswith("trusted.overlay."):
                raise UnsafeLayer(self.layer, m.name, f"layer sets overlay metadata xattr {name!r}")
            out.append((name, value.encode("utf-8", "surrogateescape")))
        return out

    def _set_xattr(self, target, name: str, value: bytes, follow: bool = True) -> None:
        try:
            os.setxattr(target, name, value, follow_symlinks=follow)
        except OSError as e:
            # containerd's rule: a filesystem or privilege that cannot hold an xattr is a warning,
            # not a failed pull (e.g. user.* on a symlink, security.selinux without SELinux).
            if e.errno not in (errno.ENOTSUP, errno.EPERM):
                raise

    def _metadata_fd(self, fd: int, m: tarfile.TarInfo) -> None:
        if self.owners:
            os.fchown(fd, m.uid, m.gid)
        os.fchmod(fd, m.mode & 0o7777)           # after chown, which clears setuid/setgid
        for name, value in self._xattrs(m):      # after chown, which clears security.capability
            self._set_xattr(fd, name, value)

    def _metadata_path(self, pfd: int, name: str, m: tarfile.TarInfo, *, chmod: bool) -> None:
        if self.owners:
            os.chown(name, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
        if chmod:
            os.chmod(name, m.mode & 0o7777, dir_fd=pfd, follow_symlinks=False)
        xattrs = self._xattrs(m)
        if xattrs:
            # setxattr has no dir_fd form; /proc/self/fd/<pfd> names the parent we resolved safely,
            # and follow_symlinks=False keeps the final component from being followed.
            path = f"/proc/self/fd/{pfd}/{name}"
            for xname, value in xattrs:
                self._set_xattr(path, xname, value, follow=False)
        t = _ns(m.mtime)
        os.utime(name, ns=(t, t), dir_fd=pfd, follow_symlinks=False)

    def finish(self) -> None:
        """Directory mtimes, deepest and latest first (creating children changed them)."""
        for parts, t in reversed(self._dir_times):
            try:
                fd = self._walk(parts, "/".join(parts) or ".", create=False)
            except UnsafeLayer:
                continue   # replaced or removed by a later entry
            os.utime(fd, ns=(t, t))


def _ns(mtime: float) -> int:
    try:
        return int(mtime * 1_000_000_000)
    except (OverflowError, ValueError):
        return 0


def unpack_layer(blob: Path, dest: Path, *, layer: str, expected_diff_id: str | None = None,
                 max_bytes: int = DEFAULT_MAX_BYTES, max_entries: int = DEFAULT_MAX_ENTRIES,
                 owners: bool = True) -> UnpackResult:
    """Unpack the (compressed) layer `blob` into `dest`, which must not exist, and check the tar's
    sha256 against `expected_diff_id`. On any error `dest` is removed: nothing half-written stays.
    Blocking: run it in a worker thread."""
    os.mkdir(dest, 0o755)
    os.chmod(dest, 0o755)
    writer = None
    try:
        with open(blob, "rb") as raw:
            stream = LayerStream(raw, layer=layer, max_bytes=max_bytes)
            writer = LayerWriter(dest, layer, owners=owners)
            entries = 0
            try:
                with tarfile.open(fileobj=stream, mode="r|", bufsize=1 << 20) as tar:
                    for member in tar:
                        entries += 1
                        if entries > max_entries:
                            raise LayerTooLarge(layer, member.name,
                                                f"more than {max_entries} entries")
                        writer.apply(member, tar)
            except tarfile.TarError as e:
                raise UnsafeLayer(layer, "", f"not a valid tar archive: {e}") from e
            writer.finish()
            stream.drain()
        diff_id = stream.hasher.digest()
        if expected_diff_id is not None and diff_id != expected_diff_id:
            raise DigestMismatch("diff_id", expected_diff_id, diff_id,
                                 detail=f"uncompressed layer {layer}")
        return UnpackResult(diff_id, stream.hasher.size, entries, stream.compression)
    except BaseException:
        if writer is not None:
            writer.close()
            writer = None
        remove_tree(dest)
        raise
    finally:
        if writer is not None:
            writer.close()


__all__ = ["ImageError", "LayerWriter", "UnpackResult", "split_entry", "unpack_layer"]
