"""Small filesystem helpers of the image store: atomic writes, removal of whole trees, disk usage.

Atomic write: write a temporary file in the same directory, fsync it, rename it over the target,
fsync the directory. rename(2) within one filesystem is atomic, so a reader (or a crash) sees the old
file or the new one, never half of one. Everything the store publishes — blobs, layer directories,
image records — appears this way, which is what "nothing is half-created" rests on.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def remove_tree(path: Path) -> None:
    """rm -rf that also works on trees an image made unreadable (a directory with mode 000 blocks
    even its owner when that owner is not root): on failure, make every directory accessible to us
    (never following symlinks) and try again."""
    if not os.path.lexists(path):
        return
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
        return
    try:
        shutil.rmtree(path)
        return
    except OSError:
        pass
    os.chmod(path, stat.S_IRWXU)
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            if not os.path.islink(p):
                os.chmod(p, stat.S_IRWXU)
    shutil.rmtree(path)


def disk_usage(path: Path) -> int:
    """Bytes allocated to the tree (st_blocks, hardlinked inodes counted once), without following
    symlinks. Blocking: run in a thread for big trees."""
    seen: set[tuple[int, int]] = set()
    total = 0
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    total += st.st_blocks * 512
    if not stat.S_ISDIR(st.st_mode):
        return total
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total
