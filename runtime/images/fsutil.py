"""The image store's disk usage figure (what `image ls` and garbage collection weigh).

Atomic writes and tree removal, which the store relies on as much, are localfs's (one way for the
whole project): write a temporary file in the same directory, fsync it, rename it over the target,
fsync the directory. rename(2) within one filesystem is atomic, so a reader (or a crash) sees the
old file or the new one, never half of one. Everything the store publishes — blobs, layer
directories, image records — appears this way, which is what "nothing is half-created" rests on.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


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
