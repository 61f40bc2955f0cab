"""Fixtures for the image tests: test images built from busybox-static, served by real registries.

Session-scoped (built and started once, ~2 s): the OCI layout of tests/imagekit.py; an open
docker-registry with the images pushed by skopeo; a second docker-registry on the *same storage*
that demands bearer tokens from our TokenServer. Function-scoped: a fresh ImageStore, and front
doors/"CDNs" (tests/registryfix.py) for the tests that need them.
"""

from __future__ import annotations

import os

import pytest

from tests.imagekit import build_test_images
from tests.registryfix import (BlobStorage, FrontDoor, LoopThread, Registry, TokenServer,
                               registry_available)

REPO = "test/busybox"


@pytest.fixture(scope="session")
def loop_thread():
    lt = LoopThread()
    yield lt
    lt.stop()


@pytest.fixture(scope="session")
def test_images(tmp_path_factory):
    return build_test_images(tmp_path_factory.mktemp("oci") / "layout")


@pytest.fixture(scope="session")
def registry(tmp_path_factory, test_images):
    why = registry_available()
    if why:
        if os.environ.get("NODEAGENT_STRICT") == "1":
            pytest.fail(why)
        pytest.skip(why)
    work = tmp_path_factory.mktemp("registry")
    reg = Registry(work / "open", work / "storage")
    try:
        for tag in ("two", "zstd", "big"):
            reg.push(test_images.layout, tag, REPO)
        reg.push(test_images.layout, "multi", REPO, all_=True)
        reg.push(test_images.layout, "two", "private/busybox")
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def token_server(tmp_path_factory, loop_thread):
    ts = TokenServer(tmp_path_factory.mktemp("token"))
    loop_thread.run(ts.start())
    yield ts
    loop_thread.run(ts.stop())


@pytest.fixture(scope="session")
def auth_registry(registry, token_server):
    reg = Registry(registry.workdir.parent / "auth", registry.storage, token=token_server)
    yield reg
    reg.stop()


@pytest.fixture
def store(tmp_path):
    from runtime.images.store import ImageStore

    return ImageStore(tmp_path / "store")


@pytest.fixture
def servers(loop_thread):
    """Start aiohttp fixture servers on the loop thread; stopped at the end of the test."""
    started = []

    def start(server):
        loop_thread.run(server.start())
        started.append(server)
        return server
    yield start
    for s in reversed(started):
        loop_thread.run(s.stop())


__all__ = ["BlobStorage", "FrontDoor"]
