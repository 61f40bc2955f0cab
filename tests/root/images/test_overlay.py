"""The image spec's whiteout examples (image-spec layer.md), unpacked by us and merged by the kernel.

Each case unpacks its layers with runtime.images.unpack (as root: real 0:0 whiteout devices and
trusted.overlay.opaque xattrs), then a child process mounts them as a read-only overlay in a private
mount namespace and reports the merged tree — what a container would see. We never mount in the
pytest process itself.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from runtime.images.pull import Puller
from runtime.images.registry import RegistryConfig
from runtime.images.unpack import unpack_layer
from tests.childproc import run_child
from tests.layerkit import dir_, file_, opaque, tar_bytes, whiteout

MERGE = """
from runtime.sys import real
from runtime.sys.consts import CLONE_NEWNS, MS_PRIVATE, MS_REC, MS_RDONLY
sc = real()
sc.unshare(CLONE_NEWNS)
sc.mount(None, "/", None, MS_REC | MS_PRIVATE)
lower = ":".join(reversed(LOWERS))           # overlay wants the top-most layer first
sc.mount("overlay", TARGET, "overlay", MS_RDONLY, "lowerdir=" + lower)
tree = {}
for dirpath, dirnames, filenames in os.walk(TARGET):
    rel = os.path.relpath(dirpath, TARGET)
    for d in dirnames:
        tree[os.path.normpath(os.path.join(rel, d)) + "/"] = None
    for f in filenames:
        p = os.path.join(dirpath, f)
        tree[os.path.normpath(os.path.join(rel, f))] = (
            "->" + os.readlink(p) if os.path.islink(p) else
            open(p, "rb").read(64).decode(errors="replace") if os.path.isfile(p) else "<special>")
out = {"tree": tree}
if RUN:
    import subprocess
    r = subprocess.run(["chroot", TARGET] + RUN, capture_output=True, text=True)
    out["run"] = [r.returncode, r.stdout, r.stderr]
report(out)
"""


def merged(tmp_path, lowers, run=None) -> dict:
    target = tmp_path / "merged"
    target.mkdir()
    code = f"LOWERS = {json.dumps([str(p) for p in lowers])}\nTARGET = {str(target)!r}\n" \
           f"RUN = {run!r}\n" + MERGE
    return run_child(code)


def layers(tmp_path, *tars):
    out = []
    for i, tar in enumerate(tars):
        blob = tmp_path / f"blob{i}"
        blob.write_bytes(tar)
        out.append(tmp_path / f"layer{i}")
        unpack_layer(blob, out[-1], layer=f"layer{i}")
    return out


BASE_APP = [dir_("etc"), file_("etc/my-app-config", b"old config"), dir_("bin"),
            file_("bin/my-app-binary", b"binary"), file_("bin/my-app-tools", b"tools v1")]


def test_changeset_example_deletes_with_a_whiteout(tmp_path):
    """layer.md "Representing Changes": my-app-config removed, my-app.d added, tools replaced."""
    ls = layers(tmp_path, tar_bytes(BASE_APP), tar_bytes([
        dir_("etc/my-app.d"), file_("etc/my-app.d/default.cfg", b"default"),
        file_("bin/my-app-tools", b"tools v2"), whiteout("etc/my-app-config")]))
    tree = merged(tmp_path, ls)["tree"]
    assert tree == {"etc/": None, "bin/": None, "etc/my-app.d/": None,
                    "etc/my-app.d/default.cfg": "default", "bin/my-app-binary": "binary",
                    "bin/my-app-tools": "tools v2"}


@pytest.mark.parametrize("opq_last", [False, True], ids=["opaque-first", "opaque-last"])
def test_opaque_directory_example_in_either_order(tmp_path, opq_last):
    """layer.md "Whiteouts": a/ made opaque, a/b/c/foo recreated; the marker may come last."""
    top = [dir_("a"), dir_("a/b"), dir_("a/b/c"), file_("a/b/c/foo", b"foo")]
    top = top + [opaque("a")] if opq_last else [top[0], opaque("a")] + top[1:]
    ls = layers(tmp_path, tar_bytes([dir_("a"), dir_("a/b"), dir_("a/b/c"),
                                     file_("a/b/c/bar", b"bar")]), tar_bytes(top))
    assert merged(tmp_path, ls)["tree"] == {"a/": None, "a/b/": None, "a/b/c/": None,
                                            "a/b/c/foo": "foo"}


@pytest.mark.parametrize("style", ["opaque", "explicit"])
def test_opaque_whiteout_equals_explicit_whiteouts(tmp_path, style):
    """layer.md "Opaque Whiteout": bin/.wh..wh..opq hides all of bin/, like one .wh. per child."""
    base = BASE_APP + [dir_("bin/tools"), file_("bin/tools/my-app-tool-one", b"one")]
    top = [dir_("bin"), opaque("bin")] if style == "opaque" else [
        dir_("bin"), whiteout("bin/my-app-binary"), whiteout("bin/my-app-tools"), whiteout("bin/tools")]
    ls = layers(tmp_path, tar_bytes(base), tar_bytes(top))
    assert merged(tmp_path, ls)["tree"] == {"etc/": None, "bin/": None,
                                            "etc/my-app-config": "old config"}


def test_a_pulled_image_merges_and_runs(registry, store, tmp_path):
    ref = f"{registry.host}/test/busybox:two"
    rec = asyncio.run(Puller(store, config=RegistryConfig(insecure=frozenset({registry.host})))
                      .pull(ref))
    out = merged(tmp_path, rec.lowerdirs, run=["/bin/sh", "-c", "cat /etc/motd; ls /data; ls /opaque"])
    tree = out["tree"]
    assert "data/keep" in tree and "data/gone" not in tree            # whiteout
    assert sorted(k for k in tree if k.startswith("opaque/") and k != "opaque/") == ["opaque/new"]
    assert tree["bin/sh"] == "->busybox"
    assert out["run"] == [0, "two layers\nkeep\nnew\n", ""]
