"""localfs: the one atomic write and the one rm -rf every package uses."""

from __future__ import annotations

import os
import threading

import pytest

import localfs


def test_write_atomic_replaces_whole_with_the_mode_asked_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "conf"
    target.write_text("old")
    localfs.write_atomic(target, "new text", 0o600)
    assert target.read_text() == "new text"
    assert target.stat().st_mode & 0o7777 == 0o600
    localfs.write_atomic(str(target), b"bytes too", 0o755)
    assert target.read_bytes() == b"bytes too" and target.stat().st_mode & 0o7777 == 0o755
    assert os.listdir(tmp_path) == ["conf"]


def test_write_atomic_replaces_a_symlink_never_its_target(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "link").symlink_to(victim)
    localfs.write_atomic(tmp_path / "link", "mine")
    assert victim.read_text() == "keep"
    assert not (tmp_path / "link").is_symlink() and (tmp_path / "link").read_text() == "mine"


def test_two_writers_never_share_a_temporary_file(tmp_path):
    """The bug of a fixed `.tmp` name: one writer truncating the other's file before its rename."""
    target = tmp_path / "f"
    texts = [str(i) * 100_000 for i in range(8)]
    threads = [threading.Thread(target=lambda t=t: [localfs.write_atomic(target, t) for _ in range(10)])
               for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert target.read_text() in texts        # one writer's whole text, never a mix
    assert os.listdir(tmp_path) == ["f"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "f"
    target.write_text("old")
    with pytest.raises(TypeError):
        localfs.write_atomic(target, 12345)    # not bytes: fails after the temporary file exists
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["f"]


def test_publish_renames_a_finished_file_into_place(tmp_path):
    (tmp_path / "download.partial").write_bytes(b"blob")
    localfs.publish(tmp_path / "download.partial", tmp_path / "blob")
    assert os.listdir(tmp_path) == ["blob"] and (tmp_path / "blob").read_bytes() == b"blob"


def test_remove_tree_removes_everything_but_never_follows_a_symlink_out(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    tree = tmp_path / "tree"
    (tree / "a/b").mkdir(parents=True)
    (tree / "a/b/f").write_text("x")
    (tree / "link").symlink_to(outside)
    os.mkfifo(tree / "fifo")
    localfs.remove_tree(str(tree))
    assert not tree.exists()
    assert (outside / "keep").exists()
    localfs.remove_tree(tree)  # gone already: fine
    (tmp_path / "toplink").symlink_to(outside)
    localfs.remove_tree(tmp_path / "toplink")  # a symlink at the top: removed, not followed
    assert not (tmp_path / "toplink").is_symlink() and (outside / "keep").exists()


def test_remove_tree_copes_with_directories_an_image_made_unreadable(tmp_path):
    tree = tmp_path / "layer"
    (tree / "locked/inner").mkdir(parents=True)
    (tree / "locked/inner/f").write_text("x")
    (tree / "locked/inner").chmod(0)
    (tree / "locked").chmod(0)
    localfs.remove_tree(tree)
    assert not tree.exists()


def test_a_write_that_need_not_be_durable_is_still_whole_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "state.json"
    target.write_text("old")
    localfs.write_atomic(target, "new", 0o600, durable=False)
    assert target.read_text() == "new" and target.stat().st_mode & 0o7777 == 0o600
    assert os.listdir(tmp_path) == ["state.json"]
