"""A path that a planted symlink makes unusable is refused with a message naming the rootfs path
and the symlink, not an openat2 call (runtime/rootfs/paths.py). Real openat2, no root needed."""

from __future__ import annotations

import errno
import os

import pytest

from runtime.rootfs.paths import SymlinkRefused, ensure_dir, open_in_root
from runtime.sys import real


@pytest.fixture
def rootfd(tmp_path):
    (tmp_path / "etc").mkdir()
    os.symlink("/", tmp_path / "proc")
    os.symlink("/nonexistent", tmp_path / "dev")
    os.symlink("etc", tmp_path / "config")            # a harmless symlink inside the root
    fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    yield fd
    os.close(fd)


def test_a_symlink_where_a_real_directory_must_be(rootfd):
    with pytest.raises(SymlinkRefused) as e:
        open_in_root(real(), rootfd, "/proc", no_symlinks=True)
    assert e.value.errno == errno.ELOOP
    assert str(e.value) == ("refused: /proc in the root filesystem is a symlink to '/', which could "
                            "lead outside the container; /proc must be a real directory in the root "
                            "filesystem")


def test_a_symlink_that_leads_nowhere_inside_the_root(rootfd):
    with pytest.raises(SymlinkRefused) as e:
        ensure_dir(real(), rootfd, "/dev/pts")
    assert e.value.errno == errno.ENOENT
    assert str(e.value).startswith("refused: /dev in the root filesystem is a symlink to "
                                   "'/nonexistent', which could lead outside the container; "
                                   "followed inside the root filesystem it leads nowhere")


def test_the_message_names_the_path_that_was_asked_for_too(rootfd):
    with pytest.raises(SymlinkRefused) as e:
        open_in_root(real(), rootfd, "/dev/pts/0")
    assert str(e.value).startswith("refused: /dev (on the way to /dev/pts/0) in the root filesystem")


def test_symlinks_inside_the_root_still_work(rootfd):
    os.close(ensure_dir(real(), rootfd, "/config/sub"))


def test_a_missing_path_without_symlinks_is_the_plain_error(rootfd):
    with pytest.raises(OSError) as e:
        open_in_root(real(), rootfd, "/etc/missing")
    assert e.value.errno == errno.ENOENT and not isinstance(e.value, SymlinkRefused)
