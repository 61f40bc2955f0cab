"""Which scheme a registry is spoken to with: https, except loopback registries and configured ones."""

import pytest

from runtime.images.reference import parse_reference
from runtime.images.registry import RegistryClient, RegistryConfig, is_loopback_registry


@pytest.mark.parametrize("host,loopback", [
    ("127.0.0.1:5000", True), ("127.9.8.7", True), ("localhost:5000", True), ("[::1]:5000", True),
    ("10.0.0.5:5000", False), ("registry.example:5000", False), ("localhost.example", False),
    ("docker.io", False),
])
def test_loopback_registries(host, loopback):
    assert is_loopback_registry(host) is loopback


@pytest.mark.parametrize("ref,insecure,scheme", [
    ("127.0.0.1:5000/team/app:1", (), "http"),
    ("localhost:5000/app:1", (), "http"),
    ("registry.example:5000/app:1", (), "https"),
    ("registry.example:5000/app:1", ("registry.example:5000",), "http"),
    ("busybox:1.36", (), "https"),
])
def test_endpoint_scheme(ref, insecure, scheme):
    client = RegistryClient(session=None, config=RegistryConfig(insecure=frozenset(insecure)))
    endpoint = client.endpoints(parse_reference(ref))[-1]
    assert endpoint.base.startswith(f"{scheme}://")
