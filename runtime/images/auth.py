"""Credentials and authentication challenges for registries.

How a registry asks for credentials (the "token authentication" of the distribution spec, which
Docker Hub, GHCR, Quay, Harbor ... all use):

    GET /v2/library/busybox/manifests/1.36
    ← 401  WWW-Authenticate: Bearer realm="https://auth.docker.io/token",
                                    service="registry.docker.io",scope="repository:library/busybox:pull"
    GET https://auth.docker.io/token?service=registry.docker.io&scope=repository:library/busybox:pull
        (with `Authorization: Basic ...` if we have a password for this registry; anonymous otherwise)
    ← 200  {"token": "eyJ...", "expires_in": 300, "issued_at": "..."}
    GET /v2/library/busybox/manifests/1.36   with `Authorization: Bearer eyJ...`   ← 200

A registry may instead answer `WWW-Authenticate: Basic realm=...` (plain HTTP basic auth, e.g. a
registry with an htpasswd file), in which case we send the password with every request.

Where passwords come from (a `Keychain`):
- a docker-style `config.json` (`docker login`, `podman login` write it): {"auths": {"host": {"auth":
  base64("user:pass")}}} — also `username`/`password` fields, `identitytoken` (an OAuth2 refresh
  token) and `registrytoken` (a ready bearer token);
- a Kubernetes `kubernetes.io/dockerconfigjson` Secret (imagePullSecrets): its `.dockerconfigjson`
  key holds that very file, base64-encoded in the Secret's data; the older `kubernetes.io/dockercfg`
  holds just the inner `auths` map. The agent passes these per pod.
Keys are matched like the kubelet's keyring: "host[:port][/path-prefix]", an optional scheme and the
Docker Hub aliases are normalised away, `*.example.com` globs match one DNS label, and the longest
matching path prefix wins. Credential helpers (`credsStore`, `credHelpers`) run external programs
and are not supported.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from runtime.images.errors import AuthError
from runtime.images.reference import DOCKER_HUB, Reference


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)   # OAuth2 refresh token
    registry_token: str = field(default="", repr=False)   # a bearer token to send as is

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


_HUB_KEYS = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


def _normalise_key(key: str) -> str:
    """'https://index.docker.io/v1/' → 'docker.io'; 'http://reg:5000/team/' → 'reg:5000/team'."""
    key = re.sub(r"^[a-z]+://", "", key.strip()).rstrip("/")
    host, _, path = key.partition("/")
    if path in ("v1", "v2") or path.startswith(("v1/", "v2/")):
        path = ""
    host = DOCKER_HUB if host in _HUB_KEYS else host
    return f"{host}/{path}" if path else host


@dataclass
class Keychain:
    """Credentials by registry (and optional repository path prefix). Later additions win ties."""

    entries: list[tuple[str, Credentials]] = field(default_factory=list)

    def add(self, key: str, creds: Credentials) -> None:
        self.entries.append((_normalise_key(key), creds))

    def merge(self, other: "Keychain") -> "Keychain":
        return Keychain(self.entries + other.entries)

    def lookup(self, ref: Reference) -> Credentials | None:
        best, best_len = None, -1
        for key, creds in self.entries:
            host, _, prefix = key.partition("/")
            if not _host_matches(host, ref.registry):
                continue
            if prefix and not (ref.repository == prefix or ref.repository.startswith(prefix + "/")):
                continue
            if len(key) >= best_len:
                best, best_len = creds, len(key)
        return best

    # --- sources -----------------------------------------------------------------------------------
    @classmethod
    def from_docker_config(cls, doc: dict, *, source: str = "config.json") -> "Keychain":
        """A parsed config.json ({"auths": {...}}), or the older .dockercfg map ({host: {...}})."""
        if not isinstance(doc, dict):
            raise AuthError(f"{source}: not a JSON object")
        if "auths" in doc:
            auths = doc["auths"]
        elif doc and all(isinstance(v, dict) and ("auth" in v or "username" in v)
                         for v in doc.values()):
            auths = doc          # the older ~/.dockercfg / kubernetes.io/dockercfg shape
        else:
            auths = {}           # settings only, or credsStore/credHelpers (not supported)
        if not isinstance(auths, dict):
            raise AuthError(f"{source}: 'auths' must be an object")
        kc = cls()
        for key, entry in auths.items():
            if not isinstance(entry, dict):
                raise AuthError(f"{source}: auths[{key!r}] must be an object")
            kc.add(key, _creds_from_entry(entry, f"{source}: auths[{key!r}]"))
        return kc

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "Keychain":
        p = Path(path)
        try:
            doc = json.loads(p.read_text())
        except OSError as e:
            raise AuthError(f"cannot read credentials file {p}: {e.strerror}") from e
        except ValueError as e:
            raise AuthError(f"credentials file {p} is not valid JSON: {e}") from e
        return cls.from_docker_config(doc, source=str(p))

    @classmethod
    def from_secret(cls, secret: dict) -> "Keychain":
        """A Kubernetes Secret object (as the API returns it: values of `data` are base64)."""
        name = (secret.get("metadata") or {}).get("name", "?")
        typ = secret.get("type", "")
        data = secret.get("data") or {}
        key = {"kubernetes.io/dockerconfigjson": ".dockerconfigjson",
               "kubernetes.io/dockercfg": ".dockercfg"}.get(typ)
        if key is None or key not in data:
            raise AuthError(f"secret {name}: want type kubernetes.io/dockerconfigjson with a "
                            f".dockerconfigjson key (got type {typ!r})")
        try:
            doc = json.loads(base64.b64decode(data[key], validate=True))
        except (binascii.Error, ValueError) as e:
            raise AuthError(f"secret {name}: {key} is not base64 of a JSON object: {e}") from e
        return cls.from_docker_config(doc, source=f"secret {name}")

    @classmethod
    def default(cls) -> "Keychain":
        """The files docker and podman log in to, if present (later ones win)."""
        kc = cls()
        home = Path(os.environ.get("HOME", "/root"))
        candidates = [Path(os.environ.get("DOCKER_CONFIG", home / ".docker")) / "config.json"]
        if os.environ.get("XDG_RUNTIME_DIR"):
            candidates.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
        if os.environ.get("REGISTRY_AUTH_FILE"):
            candidates.append(Path(os.environ["REGISTRY_AUTH_FILE"]))
        for c in candidates:
            if c.is_file():
                kc = kc.merge(cls.from_file(c))
        return kc


def _host_matches(pattern: str, host: str) -> bool:
    """Exact match, or a glob where each '*' stands for part of one DNS label (kubelet's rule:
    '*.example.com' matches 'a.example.com' but not 'a.b.example.com')."""
    if "*" not in pattern:
        return pattern == host
    p_labels, h_labels = pattern.split("."), host.split(".")
    return len(p_labels) == len(h_labels) and all(
        fnmatch.fnmatchcase(h, p) for p, h in zip(p_labels, h_labels))


def _creds_from_entry(entry: dict, where: str) -> Credentials:
    user, pw = entry.get("username", ""), entry.get("password", "")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(entry["auth"], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as e:
            raise AuthError(f"{where}.auth is not base64 of 'user:password'") from e
        if ":" not in decoded:
            raise AuthError(f"{where}.auth does not decode to 'user:password'")
        user, pw = decoded.split(":", 1)
    return Credentials(str(user), str(pw), str(entry.get("identitytoken", "")),
                       str(entry.get("registrytoken", "")))


# --- WWW-Authenticate ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Challenge:
    scheme: str                               # "bearer" or "basic" (lower case)
    params: tuple[tuple[str, str], ...] = ()

    def get(self, key: str, default: str = "") -> str:
        return dict(self.params).get(key, default)


_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAM = re.compile(rf"\s*({_TOKEN})\s*=\s*(?:\"((?:[^\"\\]|\\.)*)\"|({_TOKEN}))\s*")


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a WWW-Authenticate value (RFC 7235): `Scheme k="v", k2=v2, Scheme2 ...`.
    Quoted values may contain commas (scopes do: "repository:a:pull,push")."""
    out: list[Challenge] = []
    pos, n = 0, len(header)
    while pos < n:
        m = re.compile(rf"[\s,]*({_TOKEN})").match(header, pos)
        if not m:
            break
        scheme, pos = m.group(1).lower(), m.end()
        params: list[tuple[str, str]] = []
        while pos < n:
            pm = _PARAM.match(header, pos)
            if not pm:
                break
            value = pm.group(2) if pm.group(2) is not None else pm.group(3)
            params.append((pm.group(1).lower(), re.sub(r"\\(.)", r"\1", value)))
            pos = pm.end()
            if pos < n and header[pos] == ",":
                pos += 1
        out.append(Challenge(scheme, tuple(params)))
    return out
