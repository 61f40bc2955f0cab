"""Fixtures: a real API server process (tests/apiserver.py) and the real kubectl to drive it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.apiserver import Kubectl, Server, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("apiserver") / "data")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def kubectl(server, tmp_path_factory):
    return Kubectl(server, tmp_path_factory.mktemp("kubecache"))


@pytest.fixture
def server_factory(tmp_path):
    """Start extra servers (own data dirs, or a given one to restart); all stopped at the end."""
    started: list[Server] = []

    def start(data_dir: Path | None = None, port: int | None = None, *extra: str) -> Server:
        srv = start_server(data_dir or tmp_path / f"data{len(started)}", port, *extra)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()
