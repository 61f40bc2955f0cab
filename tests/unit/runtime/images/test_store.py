"""The image store without a registry: locks shared across tasks and processes, names, GC of
leftovers, the layers-in-use scan of mountinfo."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time

import pytest

from runtime.images.errors import DigestMismatch, StoreError
from runtime.images.inuse import layers_in_use, overlay_lowerdirs
from runtime.images.store import ImageStore

H = "sha256:" + "ab" * 32


@pytest.fixture
def store(tmp_path):
    return ImageStore(tmp_path / "store", owners=False)


def test_store_is_private_and_blobs_are_verified(store):
    assert oct(store.root.stat().st_mode & 0o777) == "0o700"
    store.put_blob("sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", b"foo")
    with pytest.raises(DigestMismatch, match="nothing was stored"):
        store.put_blob(H, b"not that")
    assert not store.has_blob(H)


def test_locked_serialises_tasks_for_one_key_only(store):
    log = []

    async def worker(key, name):
        async with store.locked(key):
            log.append(f"{name}+")
            await asyncio.sleep(0.05)
            log.append(f"{name}-")

    async def main():
        await asyncio.gather(worker("a", "1"), worker("a", "2"), worker("b", "3"))
    asyncio.run(main())

    def span(n):
        return log.index(f"{n}+"), log.index(f"{n}-")
    a1, a2, b = span("1"), span("2"), span("3")
    assert a1[1] < a2[0] or a2[1] < a1[0]           # never both holding "a"
    assert b[0] < max(a1[1], a2[1])                 # "b" did not wait for "a"


def test_locked_excludes_another_process(store):
    """A second process holding the flock makes us wait (polling, the loop stays free)."""
    code = textwrap.dedent(f"""
        import fcntl, os, sys, time
        fd = os.open({str(store.locks / 'layer-x.lock')!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("locked", flush=True)
        time.sleep(0.4)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    ticks = []

    async def main():
        async def ticker():
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.02)
        t = asyncio.create_task(ticker())
        start = time.monotonic()
        async with store.locked("layer-x"):
            waited = time.monotonic() - start
        t.cancel()
        return waited
    waited = asyncio.run(main())
    child.wait()
    assert waited > 0.2 and len(ticks) > 5          # we waited, and the loop kept running


def test_gc_clears_crashed_unpacks_and_old_partials(store):
    (store.tmp / "unpack-dead").mkdir()
    (store.tmp / "unpack-dead" / "f").write_bytes(b"x" * 100)
    old = store.ingest / f"{'cd' * 32}.partial"
    old.write_bytes(b"y" * 10)
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    fresh = store.ingest / f"{'ef' * 32}.partial"
    fresh.write_bytes(b"z")
    (store.layers / ("12" * 32)).mkdir()
    report = store.gc()
    assert report.layers == 1 and report.partials == 1
    assert list(store.tmp.iterdir()) == [] and fresh.exists() and not old.exists()


def test_unknown_images_and_ambiguous_ids(store):
    with pytest.raises(StoreError, match="docker.io/library/busybox:latest is not in the store"):
        store.get("busybox")


def test_overlay_lowerdirs_from_mountinfo():
    text = ("36 35 98:0 / /mnt rw - ext4 /dev/root rw\n"
            "90 29 0:50 / /run/c1/rootfs rw,relatime - overlay overlay "
            "rw,lowerdir=/s/layers/sha256/aa/root:/s/layers/sha256/bb/root,upperdir=/u,workdir=/w\n"
            r"91 29 0:51 / /x rw - overlay overlay ro,lowerdir=/with\040space/l:/co\:lon/l" "\n")
    assert overlay_lowerdirs(text) == {"/s/layers/sha256/aa/root", "/s/layers/sha256/bb/root",
                                       "/with space/l", "/co:lon/l"}


def test_layers_in_use_reads_every_mount_namespace_once(store, tmp_path):
    proc = tmp_path / "proc"
    for pid, ns, lower in [("1", "mnt:[1]", "aa"), ("2", "mnt:[1]", "zz"), ("77", "mnt:[2]", "bb")]:
        (proc / pid / "ns").mkdir(parents=True)
        os.symlink(ns, proc / pid / "ns" / "mnt")
        (proc / pid / "mountinfo").write_text(
            f"1 0 0:1 / /r rw - overlay overlay rw,lowerdir={store.layers}/{lower * 32}/root\n")
    (proc / "self").mkdir()
    assert layers_in_use(store, proc) == {"sha256:" + "aa" * 32, "sha256:" + "bb" * 32}


def test_progress_view_plain_and_tty():
    import io

    from nodeagent.commands._images import ProgressView
    from runtime.images.pull import Progress

    class Tty(io.StringIO):
        def isatty(self):
            return True
    plain, tty = io.StringIO(), Tty()
    for view in (ProgressView(plain), ProgressView(tty)):
        view(Progress(H, "waiting", 0, 100))
        view(Progress(H, "downloading", 50, 100))
        view(Progress(H, "done", 100, 100))
    assert plain.getvalue().splitlines() == [f"{H[7:19]}: downloading 100 B", f"{H[7:19]}: pull complete"]
    assert "\x1b[1F" in tty.getvalue() and "[" + "=" * 15 in tty.getvalue()
