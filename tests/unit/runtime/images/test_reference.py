"""Image references as users type them, normalised the way Docker and containerd do."""

from __future__ import annotations

import pytest

from runtime.images.errors import BadReference
from runtime.images.reference import parse_reference

D = "sha256:" + "a" * 64


@pytest.mark.parametrize("text, registry, repo, tag, digest", [
    ("busybox", "docker.io", "library/busybox", "latest", None),
    ("busybox:1.36", "docker.io", "library/busybox", "1.36", None),
    ("library/busybox", "docker.io", "library/busybox", "latest", None),
    ("bitnami/nginx:1.25", "docker.io", "bitnami/nginx", "1.25", None),
    ("index.docker.io/library/alpine:3", "docker.io", "library/alpine", "3", None),
    ("docker.io/alpine", "docker.io", "library/alpine", "latest", None),
    ("ghcr.io/owner/app:v1.2.3", "ghcr.io", "owner/app", "v1.2.3", None),
    ("127.0.0.1:5000/test/busybox:two", "127.0.0.1:5000", "test/busybox", "two", None),
    ("localhost/app", "localhost", "app", "latest", None),
    ("localhost:5000/app", "localhost:5000", "app", "latest", None),
    (f"busybox@{D}", "docker.io", "library/busybox", None, D),
    (f"busybox:1.36@{D}", "docker.io", "library/busybox", "1.36", D),
    ("quay.io/a/b/c:x_y-z.1", "quay.io", "a/b/c", "x_y-z.1", None),
])
def test_parses_and_normalises(text, registry, repo, tag, digest):
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repo, tag, digest)


def test_docker_hub_name_is_not_its_api_host():
    assert parse_reference("busybox").api_host == "registry-1.docker.io"
    assert parse_reference("127.0.0.1:5000/a").api_host == "127.0.0.1:5000"


def test_digest_wins_over_tag_for_fetching_and_forms_print_back():
    ref = parse_reference(f"busybox:1.36@{D}")
    assert ref.selector == D
    assert str(ref) == f"docker.io/library/busybox:1.36@{D}"
    assert ref.familiar() == f"busybox:1.36@{D}"
    assert parse_reference("ghcr.io/o/a").familiar() == "ghcr.io/o/a:latest"


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("busybox:", "tag"),
    ("Busybox", "lowercase"),
    ("busybox@sha256:abc", "digest"),
    ("busybox@md5:" + "a" * 32, "digest"),
    ("a//b", "path component"),
    ("ghcr.io/", "no repository"),
    ("bad_host!:5000/x", "not a host"),
    ("busybox:" + "x" * 200, "tag"),
    (" busybox", "whitespace"),
])
def test_bad_references_say_what_is_wrong(text, fragment):
    with pytest.raises(BadReference, match=fragment):
        parse_reference(text)
