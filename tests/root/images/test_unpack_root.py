"""Unpacking as root: what only root can write (owners, devices, whiteouts, trusted xattrs, file
capabilities), and the hostile-layer suite again with root's powers — root skips the permission
checks that would otherwise stop some escapes by accident."""

from __future__ import annotations

import os
import stat

import pytest

from runtime.images.errors import LayerTooLarge, UnsafeLayer
from runtime.images.unpack import unpack_layer
from tests.layerkit import (HOSTILE, blockdev, canary_intact, chardev, dir_, fifo, file_,
                            gzip_bytes, opaque, tar_bytes, whiteout)


def _unpack(tmp_path, entries, **kw):
    blob = tmp_path / "blob"
    blob.write_bytes(tar_bytes(entries))
    dest = tmp_path / "layer"
    unpack_layer(blob, dest, layer="L", **kw)
    return dest


def test_owners_devices_fifos_xattrs_and_capabilities(tmp_path):
    cap = bytes.fromhex("0100000200200000000000000000000000000000")   # cap_net_raw+ep (v2)
    dest = _unpack(tmp_path, [
        dir_("home/app", uid=1000, gid=1000, mode=0o750),
        file_("home/app/f", b"x", uid=1000, gid=1001, mode=0o2755),
        chardev("dev/null", 1, 3, mode=0o666),
        blockdev("dev/sda", 8, 0, mode=0o660, gid=6),
        fifo("run/pipe", mode=0o600),
        file_("bin/ping", b"\x7fELF", mode=0o755, xattrs={"security.capability": cap,
                                                           "user.origin": b"test"}),
    ])
    st = (dest / "home/app").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1000, 0o750)
    st = (dest / "home/app/f").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1001, 0o2755)   # setgid kept
    st = (dest / "dev/null").lstat()
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    assert stat.S_IMODE(st.st_mode) == 0o666
    st = (dest / "dev/sda").lstat()
    assert stat.S_ISBLK(st.st_mode) and st.st_gid == 6
    assert stat.S_ISFIFO((dest / "run/pipe").lstat().st_mode)
    assert os.getxattr(dest / "bin/ping", "security.capability") == cap
    assert os.getxattr(dest / "bin/ping", "user.origin") == b"test"


def test_whiteouts_become_overlay_markers_but_never_hide_this_layers_own_files(tmp_path):
    dest = _unpack(tmp_path, [
        dir_("etc"), whiteout("etc/old"),                     # → 0:0 char device
        dir_("a"), opaque("a"), file_("a/mine", b"mine"),      # → trusted.overlay.opaque=y
        file_("b", b"kept"), whiteout("b"),                    # same-layer file wins (spec)
        whiteout("c"), file_("c", b"recreated"),               # ...in either order
        whiteout("d"), dir_("d"), file_("d/new", b"n"),        # deleted dir recreated → opaque
    ])
    st = (dest / "etc/old").lstat()
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(dest / "a", "trusted.overlay.opaque") == b"y"
    assert (dest / "a/mine").read_bytes() == b"mine"
    assert (dest / "b").read_bytes() == b"kept" and (dest / "c").read_bytes() == b"recreated"
    assert os.getxattr(dest / "d", "trusted.overlay.opaque") == b"y"
    assert not any(p.name.startswith(".wh.") for p in dest.rglob("*"))


@pytest.fixture
def outside(tmp_path):
    o = tmp_path / "outside"
    o.mkdir()
    (o / "canary").write_bytes(b"canary")
    return o


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_layers_as_root(tmp_path, outside, case):
    with pytest.raises(UnsafeLayer, match="refusing entry"):
        _unpack(tmp_path, HOSTILE[case](outside))
    canary_intact(outside)
    assert not (tmp_path / "layer").exists()


def test_gzip_bomb_as_root(tmp_path, outside):
    blob = tmp_path / "bomb.gz"
    blob.write_bytes(gzip_bytes(tar_bytes([file_("zeros", b"\0" * (64 << 20))])))
    with pytest.raises(LayerTooLarge):
        unpack_layer(blob, tmp_path / "layer", layer="L", max_bytes=4 << 20)
    canary_intact(outside)
    assert not (tmp_path / "layer").exists()
