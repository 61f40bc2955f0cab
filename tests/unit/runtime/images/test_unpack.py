"""Safe unpacking, without root: what lands on disk, and every hostile entry refused with nothing
written outside the layer root (and nothing left inside it either).

Device nodes, whiteouts (0:0 devices, trusted.overlay.opaque) and owners need root: see
tests/root/images/test_unpack_root.py for those and for the overlay-merged results.
"""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from runtime.images.errors import DigestMismatch, LayerTooLarge, UnsafeLayer
from runtime.images.unpack import split_entry, unpack_layer
from tests.layerkit import (HOSTILE, canary_intact, dir_, file_, gzip_bytes, hardlink, symlink,
                            tar_bytes, zstd_bytes)


def _unpack(tmp_path, entries, *, compress=None, **kw):
    raw = tar_bytes(entries)
    blob = tmp_path / "blob"
    blob.write_bytes(compress(raw) if compress else raw)
    dest = tmp_path / "layer"
    result = unpack_layer(blob, dest, layer="sha256:test", owners=False, **kw)
    return dest, result, raw


@pytest.mark.parametrize("compress", [None, gzip_bytes, zstd_bytes], ids=["tar", "gzip", "zstd"])
def test_files_dirs_links_and_metadata_land_as_written(tmp_path, compress):
    dest, result, raw = _unpack(tmp_path, [
        dir_("bin", mtime=1_600_000_000),
        file_("bin/busybox", b"\x7fELF" + b"x" * 5000, mode=0o4755, mtime=1_650_000_000),
        symlink("bin/sh", "busybox"),
        symlink("bin/abs", "/bin/busybox"),             # absolute targets are fine: never followed here
        hardlink("bin/ls", "bin/busybox"),
        file_("etc/implicit/parent.conf", b"k=v\n"),     # parents not in the tar are created
        dir_("tmp", mode=0o1777),
    ], compress=compress)
    assert result.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert result.compression == {None: "", gzip_bytes: "gzip", zstd_bytes: "zstd"}[compress]
    bb = dest / "bin/busybox"
    assert bb.read_bytes().startswith(b"\x7fELF")
    assert stat.S_IMODE(bb.stat().st_mode) == 0o4755                 # setuid kept
    assert bb.stat().st_mtime == 1_650_000_000
    assert os.readlink(dest / "bin/sh") == "busybox"
    assert os.readlink(dest / "bin/abs") == "/bin/busybox"
    assert (dest / "bin/ls").stat().st_ino == bb.stat().st_ino       # a real hardlink
    assert (dest / "etc/implicit/parent.conf").read_text() == "k=v\n"
    assert stat.S_IMODE((dest / "tmp").stat().st_mode) == 0o1777
    assert (dest / "bin").stat().st_mtime == 1_600_000_000           # set after its children
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755                # the container's / is usable


def test_later_entries_replace_earlier_ones_without_writing_through_links(tmp_path):
    dest, _, _ = _unpack(tmp_path, [
        file_("a", b"first"),
        hardlink("b", "a"),
        file_("b", b"second"),        # replaces the link; must not change "a"
        dir_("d"), file_("d/x", b"1"),
        dir_("d"),                    # a repeated directory merges, keeps d/x
        symlink("s", "d"),
        file_("s", b"now a file"),    # replaces the symlink itself, not d
    ])
    assert (dest / "a").read_bytes() == b"first"
    assert (dest / "b").read_bytes() == b"second"
    assert (dest / "d/x").read_bytes() == b"1"
    assert (dest / "s").read_bytes() == b"now a file" and (dest / "d").is_dir()


def test_diff_id_mismatch_stores_nothing_and_names_the_layer(tmp_path):
    with pytest.raises(DigestMismatch, match="diff_id sha256:0+.*nothing was stored"):
        _unpack(tmp_path, [file_("x", b"data")], expected_diff_id="sha256:" + "0" * 64)
    assert not (tmp_path / "layer").exists()


@pytest.mark.parametrize("name, ok", [
    ("./etc/passwd", ["etc", "passwd"]), ("etc//passwd/", ["etc", "passwd"]), ("./", []), (".", []),
    ("../x", None), ("a/../../x", None), ("/etc/passwd", None), ("a/./b", None), ("a/.", None),
    ("a\x00b", None),
])
def test_entry_names(name, ok):
    if ok is None:
        with pytest.raises(UnsafeLayer):
            split_entry(name, "L")
    else:
        assert split_entry(name, "L") == ok


# --- the hostile-layer suite (cases in tests/layerkit.py; as root in tests/root/images) -------

@pytest.fixture
def outside(tmp_path):
    o = tmp_path / "outside"
    o.mkdir()
    (o / "canary").write_bytes(b"canary")
    return o


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_layers_are_refused_and_nothing_escapes(tmp_path, outside, case):
    with pytest.raises(UnsafeLayer) as exc:
        _unpack(tmp_path, HOSTILE[case](outside))
    assert "refusing entry" in str(exc.value)
    canary_intact(outside)
    assert not (tmp_path / "layer").exists()    # the half-written layer is gone too


def test_gzip_bomb_stops_at_the_cap(tmp_path, outside):
    # 64 MiB of zeros in one file compresses to ~64 KiB; the cap is 8 MiB.
    bomb = tar_bytes([file_("zeros", b"\0" * (64 << 20))])
    blob = tmp_path / "bomb.gz"
    blob.write_bytes(gzip_bytes(bomb))
    assert blob.stat().st_size < 1 << 20
    with pytest.raises(LayerTooLarge, match="decompression bomb"):
        unpack_layer(blob, tmp_path / "layer", layer="L", owners=False, max_bytes=8 << 20)
    assert not (tmp_path / "layer").exists()
    canary_intact(outside)


def test_too_many_entries(tmp_path):
    with pytest.raises(LayerTooLarge, match="more than 5 entries"):
        _unpack(tmp_path, [file_(f"f{i}") for i in range(10)], max_entries=5)


@pytest.mark.parametrize("blob, fragment", [
    (gzip_bytes(tar_bytes([file_("x", b"y" * 1000)]))[:-20], "corrupt gzip"),
    (b"\x28\xb5\x2f\xfd" + b"garbage" * 10, "corrupt zstd"),
    (b"this is not a tar archive at all" * 40, "not a valid tar"),
])
def test_corrupt_streams_are_refused(tmp_path, blob, fragment):
    p = tmp_path / "blob"
    p.write_bytes(blob)
    with pytest.raises(UnsafeLayer, match=fragment):
        unpack_layer(p, tmp_path / "layer", layer="L", owners=False)
    assert not (tmp_path / "layer").exists()
