"""Image references: what a user types (`busybox`, `nginx:1.25`, `ghcr.io/o/app@sha256:...`) and
what it means.

The grammar is Docker's (github.com/distribution/reference), which every tool follows:

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] path-component ( "/" path-component )*
    domain     := the first component, *if* it contains "." or ":", is "localhost", or has upper case
    path-comp  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}

Docker Hub defaults, which is why `busybox` works at all:
- no domain → `docker.io`; a one-component name on docker.io → `library/<name>` (the "official
  images" namespace); no tag and no digest → `:latest`;
- `docker.io` is a name, not a server: its registry API lives at `registry-1.docker.io`.

When both a tag and a digest are given (`busybox:1.36@sha256:...`), the digest decides what is pulled
and the tag is only a label (as in Docker and containerd).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runtime.images.errors import BadReference

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)"
                     r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                     r"(?::[0-9]+)?|\[[0-9A-Fa-f:.]+\](?::[0-9]+)?")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_MAX_NAME = 255


@dataclass(frozen=True)
class Reference:
    """A parsed, normalised image reference. `str(ref)` is the canonical full form."""

    registry: str          # "docker.io", "127.0.0.1:5000", "ghcr.io"
    repository: str        # "library/busybox"
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """registry/repository, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        """The host:port that serves the registry API for this name."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def selector(self) -> str:
        """What to ask the registry for: the digest when we have one, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def familiar_name(self) -> str:
        """Docker's short name: `busybox` for docker.io/library/busybox."""
        if self.registry == DOCKER_HUB:
            return self.repository.removeprefix("library/")
        return self.name

    def familiar(self) -> str:
        """Docker's short form: `busybox:1.36` for docker.io/library/busybox:1.36."""
        return self.familiar_name + self._suffix()

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.name + self._suffix()


def parse_reference(text: str) -> Reference:
    """Parse what a user typed. Raises BadReference saying which part is wrong."""
    if not isinstance(text, str) or not text:
        raise BadReference(str(text), "empty")
    if text != text.strip():
        raise BadReference(text, "surrounding whitespace")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.fullmatch(digest):
            raise BadReference(text, f"digest {digest!r} is not sha256:<64 lowercase hex digits>")
    # A tag follows the last ":" only if that ":" is after the last "/" (else it is a port).
    tag = None
    colon, slash = rest.rfind(":"), rest.rfind("/")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise BadReference(text, f"tag {tag!r} is not valid (letters, digits, _ . -; max 128)")
    if not rest:
        raise BadReference(text, "no repository name")

    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _DOMAIN.fullmatch(first):
            raise BadReference(text, f"registry {first!r} is not a host[:port]")
        registry, path = first, remainder
    else:
        registry, path = DOCKER_HUB, rest
    if registry in _HUB_ALIASES:
        registry = DOCKER_HUB
    if not path:
        raise BadReference(text, "no repository name after the registry")
    for comp in path.split("/"):
        if not _COMPONENT.fullmatch(comp):
            why = ("repository names must be lowercase" if comp.lower() != comp and
                   _COMPONENT.fullmatch(comp.lower()) else
                   f"path component {comp!r} is not valid (lowercase letters, digits, . _ -)")
            raise BadReference(text, why)
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if len(f"{registry}/{path}") > _MAX_NAME:
        raise BadReference(text, f"name longer than {_MAX_NAME} characters")
    if tag is None and digest is None:
        tag = "latest"
    return Reference(registry, path, tag, digest)
