"""The ImageService over runtime.images, against real registries (Debian's docker-registry, one
open and one demanding bearer tokens): pull with and without the pod's credentials, status, list,
remove (idempotent), and the CRI errors a kubelet shows (ErrImagePull, InvalidImageName)."""

from __future__ import annotations

import asyncio
import base64
import os

import pytest

from nodeagent.cri.api import AuthConfig, CRIError
from nodeagent.cri.images import Images
from tests.imagekit import build_test_images
from tests.registryfix import LoopThread, Registry, TokenServer, registry_available


@pytest.fixture
def registries(tmp_path):
    why = registry_available()
    if why:
        if os.environ.get("NODEAGENT_STRICT") == "1":
            pytest.fail(why)
        pytest.skip(why)
    images = build_test_images(tmp_path / "oci" / "layout")
    loop = LoopThread()
    token = TokenServer(tmp_path / "token")
    loop.run(token.start())
    open_ = Registry(tmp_path / "open", tmp_path / "storage")
    auth = None
    try:
        open_.push(images.layout, "two", "test/busybox")
        open_.push(images.layout, "two", "private/busybox")
        auth = Registry(tmp_path / "auth", tmp_path / "storage", token=token)
        yield open_, auth
    finally:
        for r in (open_, auth):
            if r is not None:
                r.stop()
        loop.run(token.stop())
        loop.stop()


def test_pull_status_list_remove_with_the_pods_credentials(registries, tmp_path):
    from runtime.images import ImageStore

    open_, auth = registries
    svc = Images(ImageStore(tmp_path / "store"))

    async def main():
        ref = f"{open_.host}/test/busybox:two"
        image_id = await svc.pull_image(ref)
        st = await svc.image_status(ref)
        by_id = await svc.image_status(image_id)
        private = f"{auth.host}/private/busybox:two"
        errors = {}
        try:
            await svc.pull_image(private)
        except CRIError as e:
            errors["no creds"] = [e.reason, e.message]
        creds = AuthConfig(server=auth.host, auth=base64.b64encode(b"alice:wonderland").decode())
        private_id = await svc.pull_image(private, (creds,))
        for bad in ("a//b", f"{open_.host}/test/nothing:here"):
            try:
                await svc.pull_image(bad)
            except CRIError as e:
                errors[bad] = [type(e).__name__, e.reason, e.message]
        listed = sorted(t for i in await svc.list_images() for t in i.repo_tags)
        await svc.remove_image(ref)
        await svc.remove_image(ref)                   # idempotent
        after = await svc.image_status(ref)
        return image_id, st, by_id, private_id, errors, listed, after

    image_id, st, by_id, private_id, errors, listed, after = asyncio.run(main())
    assert image_id.startswith("sha256:") and st.id == image_id and by_id == st
    assert st.repo_tags == (f"{open_.host}/test/busybox:two",)
    assert st.repo_digests[0].startswith(f"{open_.host}/test/busybox@sha256:")
    assert st.uid == 0 and st.size > 0
    assert errors["no creds"][0] == "ErrImagePull" and "private/busybox" in errors["no creds"][1]
    assert private_id == image_id                     # the same image, pushed twice
    assert errors["a//b"][:2] == ["InvalidImageName", "InvalidImageName"]
    assert errors[f"{open_.host}/test/nothing:here"][1] == "ErrImagePull"
    assert listed == sorted([f"{open_.host}/test/busybox:two", f"{auth.host}/private/busybox:two"])
    assert after is None
