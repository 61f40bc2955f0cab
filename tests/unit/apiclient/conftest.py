"""A real API server process for the client's tests (tests/apiserver.py)."""

import pytest

from tests.apiserver import start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("apiserver") / "data", None, "--default-watch-cache-size", "20")
    yield srv
    srv.stop()
