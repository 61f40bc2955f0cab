"""`nodeagent run IMAGE`: an image's layers as the overlay's lower layers, its config as the
process defaults (Entrypoint + Cmd, Env, WorkingDir, User), the command replacing Cmd."""

from __future__ import annotations

import subprocess
import sys

from tests.busybox import REPO
from tests.imagekit import OciLayout, base_layer, top_layer


def _import(rt, layout_dir) -> str:
    store = rt.base / "images"
    out = subprocess.run([sys.executable, "-m", "nodeagent", "image", "import", "--store", str(store),
                          str(layout_dir), "--repo", "localhost/kit"],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    return str(store)


def test_run_an_image_with_its_defaults_and_with_a_command(rt):
    layout = OciLayout(rt.base / "oci")
    layout.image([base_layer(), top_layer()], tag="two")          # Entrypoint sh -c, Cmd cat /etc/motd
    store = _import(rt, rt.base / "oci")
    out = rt.run("--rm", "--image-store", store, "--pull", "never", "localhost/kit:two")
    assert (out.returncode, out.stdout) == (0, "two layers\n"), out.stderr
    out = rt.run("--rm", "--image-store", store, "localhost/kit:two",
                 "pwd; echo $GREETING; ls /data; id -u")               # replaces Cmd, keeps Entrypoint
    assert out.stdout.split() == ["/data", "hello", "keep", "0"], out.stderr  # the whiteout hid "gone"


def test_a_named_user_is_resolved_in_the_images_own_passwd(rt):
    layout = OciLayout(rt.base / "oci")
    layout.image([base_layer()], tag="app", config={"Cmd": ["id"], "User": "app"})
    store = _import(rt, rt.base / "oci")
    out = rt.run("--rm", "--image-store", store, "localhost/kit:app")
    assert out.stdout.strip().startswith("uid=1000(app) gid=1000(app)"), out.stderr
    layout.image([base_layer()], tag="ghost", config={"Cmd": ["id"], "User": "ghost"})
    store = _import(rt, rt.base / "oci")
    out = rt.run("--rm", "--image-store", store, "localhost/kit:ghost")
    assert out.returncode == 125
    assert "no 'ghost' in the image's /etc/passwd" in out.stderr
