"""A client for the OCI distribution API (what `docker pull` speaks), on aiohttp.

Pulling needs only three kinds of request (distribution-spec, "Pull"):

    GET /v2/<repo>/manifests/<tag-or-digest>    Accept: the manifest and index media types
    GET /v2/<repo>/blobs/<digest>               a config or a layer (maybe redirected, maybe ranged)
    (and, when answered 401, the token dance described in auth.py)

Things this file gets right that a naive client does not:
- Digests. A manifest fetched by digest must hash to it; fetched by tag, its hash is its identity
  (and must equal the Docker-Content-Digest header if the registry sends one). Every blob is hashed
  while it streams and compared with its descriptor's digest *and size* — never more bytes than the
  descriptor promised are accepted.
- Redirects. Registries answer blob GETs with 307 to object storage (S3, a CDN) on another host. We
  follow redirects ourselves and drop the Authorization header when the origin (scheme, host, port)
  changes: our registry token is none of the storage service's business (and S3 rejects requests
  carrying two kinds of auth).
- Tokens are cached per (realm, service, scope) until `expires_in` runs out, refreshed before
  that, and re-fetched once if the registry still answers 401 (a token revoked or expired early).
- Resume. A blob download appends to ingest/<hex>.partial; the next attempt asks for
  `Range: bytes=<have>-`, re-hashes the part it has, and continues. A server that ignores the
  range (200 instead of 206) makes us start over from 0.
- Mirrors and plain HTTP are used only when configured (RegistryConfig): a pull never silently
  downgrades to http, and a mirror failing makes us fall back to the next mirror, then upstream.

Blocking work stays off the event loop: chunks are collected to ~1 MiB and written and hashed in a
worker thread.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlencode, urljoin, urlsplit

import aiohttp

from runtime.images.auth import Challenge, Credentials, Keychain, parse_challenges
from runtime.images.digest import sha256_bytes
from runtime.images.errors import AuthError, DigestMismatch, NotFound, RegistryError
from runtime.images.manifest import ACCEPT, MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES, Descriptor
from runtime.images.reference import Reference

USER_AGENT = "nodeagent/0.1 (+runtime.images)"
MAX_REDIRECTS = 10
FLUSH_BYTES = 1 << 20
DEFAULT_TOKEN_LIFETIME = 60     # seconds, when a token server does not say (distribution spec)


@dataclass(frozen=True)
class RegistryConfig:
    """Where to pull from. `insecure`: registries (host[:port]) spoken to over plain http.
    `mirrors`: registry name → mirror base URLs (with scheme), tried in order before it."""

    insecure: frozenset[str] = frozenset()
    mirrors: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    base: str          # "https://registry-1.docker.io" or a mirror's URL
    host: str          # for credential lookup
    mirror: bool = False


@dataclass(frozen=True)
class FetchedManifest:
    raw: bytes
    content_type: str
    digest: str


ProgressFn = Callable[[int], None]   # called with the number of bytes we have so far


def _origin(url: str) -> tuple[str, str, int | None]:
    u = urlsplit(url)
    return u.scheme, (u.hostname or "").lower(), u.port or {"http": 80, "https": 443}.get(u.scheme)


def is_loopback_registry(host_port: str) -> bool:
    """A registry on this machine's loopback (localhost, 127.0.0.0/8, ::1) speaks plain http by
    default, as Docker (its insecure-registries always include 127.0.0.0/8) and containerd (plain
    http for localhost) treat it: nothing leaves the machine, and a local test registry has no
    certificate. Any other host needs --insecure-registry (or the agent's config)."""
    host = urlsplit(f"//{host_port}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RegistryClient:
    """One client per pull (or per agent); owns nothing but its token cache. The caller owns the
    aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, *, keychain: Keychain | None = None,
                 config: RegistryConfig | None = None):
        self.session = session
        self.keychain = keychain or Keychain()
        self.config = config or RegistryConfig()
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._basic: set[str] = set()          # hosts that asked for Basic auth
        self._challenges: dict[str, Challenge] = {}
        # (method, url) of recent requests, for tests and debugging; bounded for a long-lived agent.
        self.requests: collections.deque[tuple[str, str]] = collections.deque(maxlen=1000)

    # --- endpoints -------------------------------------------------------------------------------
    def endpoints(self, ref: Reference) -> list[Endpoint]:
        eps = [Endpoint(m.rstrip("/"), urlsplit(m).netloc, True)
               for m in self.config.mirrors.get(ref.registry, ())]
        plain = (ref.registry in self.config.insecure or ref.api_host in self.config.insecure
                 or is_loopback_registry(ref.api_host))
        scheme = "http" if plain else "https"
        eps.append(Endpoint(f"{scheme}://{ref.api_host}", ref.registry))
        return eps

    def _creds(self, ep: Endpoint, ref: Reference) -> Credentials | None:
        if ep.mirror:
            return self.keychain.lookup(Reference(ep.host, ref.repository, ref.tag, ref.digest))
        return self.keychain.lookup(ref)

    # --- auth ------------------------------------------------------------------------------------
    async def _auth_header(self, ep: Endpoint, ref: Reference, *, refresh: bool) -> str | None:
        creds = self._creds(ep, ref)
        if creds and creds.registry_token:
            return f"Bearer {creds.registry_token}"
        if ep.host in self._basic:
            if not creds:
                raise AuthError(f"registry {ep.host} wants a username and password for "
                                f"{ref.repository}, and none is configured")
            return creds.basic_header()
        ch = self._challenges.get(ep.base)
        if ch is None:
            return None      # anonymous first: the registry tells us what it wants
        key = (ch.get("realm"), ch.get("service"), f"repository:{ref.repository}:pull")
        cached = self._tokens.get(key)
        if cached and not refresh and time.monotonic() < cached[1]:
            return f"Bearer {cached[0]}"
        token, lifetime = await self._fetch_token(ch, key[2], creds, ref)
        # Refresh a little before the server's deadline, so a token never expires in flight.
        self._tokens[key] = (token, time.monotonic() + max(1.0, lifetime - min(10.0, lifetime / 4)))
        return f"Bearer {token}"

    async def _fetch_token(self, ch: Challenge, scope: str, creds: Credentials | None,
                           ref: Reference) -> tuple[str, float]:
        realm = ch.get("realm")
        if not realm.startswith(("https://", "http://")):
            raise AuthError(f"registry for {ref.name} sent a bearer challenge without a usable "
                            f"realm URL ({realm!r})")
        params = {"scope": scope}
        if ch.get("service"):
            params["service"] = ch.get("service")
        headers = {"User-Agent": USER_AGENT}
        if creds and creds.identity_token:
            # OAuth2 refresh-token grant (what `docker login` stores for some registries).
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                    "client_id": "nodeagent", **params}
            call = self.session.post(realm, data=form, headers=headers, allow_redirects=True)
        else:
            if creds and creds.username:
                headers["Authorization"] = creds.basic_header()
            call = self.session.get(f"{realm}?{urlencode(params)}", headers=headers)
        self.requests.append(("TOKEN", realm))
        try:
            async with call as resp:
                body = await resp.content.read(1 << 20)
                if resp.status in (401, 403):
                    who = f"as {creds.username!r}" if creds and creds.username else "anonymously"
                    raise AuthError(f"token server refused a pull token for {ref.name} {who}",
                                    url=realm, status=resp.status)
                if resp.status != 200:
                    raise RegistryError(f"token server failed for {ref.name}", url=realm,
                                        status=resp.status)
        except aiohttp.ClientError as e:
            raise RegistryError(f"cannot reach token server {realm}: {e}") from e
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
            lifetime = float(doc.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (ValueError, AttributeError, TypeError) as e:
            raise RegistryError(f"token server {realm} sent an unreadable answer") from e
        if not token:
            raise RegistryError(f"token server {realm} sent no token")
        return token, lifetime

    # --- requests --------------------------------------------------------------------------------
    async def _follow(self, method: str, url: str, headers: dict) -> aiohttp.ClientResponse:
        """One request, following redirects ourselves (see the module docstring). The caller owns
        the returned response and must release it."""
        origin = _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            self.requests.append((method, url))
            resp = await self.session.request(method, url, headers=headers, allow_redirects=False)
            if resp.status not in (301, 302, 303, 307, 308) or "Location" not in resp.headers:
                return resp
            nxt = urljoin(url, resp.headers["Location"])
            resp.release()
            if _origin(nxt) != origin and "Authorization" in headers:
                headers = {k: v for k, v in headers.items() if k != "Authorization"}
            url = nxt
        raise RegistryError(f"more than {MAX_REDIRECTS} redirects", url=url)

    async def _get(self, ref: Reference, path: str, headers: dict | None = None
                   ) -> tuple[aiohttp.ClientResponse, Endpoint]:
        """GET path from the first endpoint that has it, authenticating as the registry asks."""
        last: Exception | None = None
        for ep in self.endpoints(ref):
            try:
                return await self._get_from(ep, ref, path, dict(headers or {})), ep
            except RegistryError as e:
                if not ep.mirror:
                    raise
                last = e    # a mirror without the content (or down): try the next one
        raise last or RegistryError(f"no endpoint for {ref.name}")

    async def _get_from(self, ep: Endpoint, ref: Reference, path: str, headers: dict):
        url = ep.base + path
        headers.setdefault("User-Agent", USER_AGENT)
        refreshed = False
        for attempt in range(3):
            auth = await self._auth_header(ep, ref, refresh=refreshed)
            hdrs = dict(headers, **({"Authorization": auth} if auth else {}))
            try:
                resp = await self._follow("GET", url, hdrs)
            except aiohttp.ClientError as e:
                hint = ""
                if ep.base.startswith("https:") and isinstance(e, aiohttp.ClientSSLError):
                    hint = (f"; if {ep.host} speaks plain http, allow it with "
                            f"--insecure-registry {ep.host}")
                raise RegistryError(f"cannot reach {ep.base} for {ref.name}: {e}{hint}") from e
            if resp.status != 401:
                if resp.status >= 400 and resp.status != 416:
                    await self._raise_for(resp, ref, url)
                return resp
            challenges = parse_challenges(resp.headers.get("WWW-Authenticate", ""))
            resp.release()
            bearer = next((c for c in challenges if c.scheme == "bearer"), None)
            basic = next((c for c in challenges if c.scheme == "basic"), None)
            if bearer and (auth is None or auth.startswith("Bearer")) and attempt < 2:
                known = self._challenges.get(ep.base)
                self._challenges[ep.base] = bearer
                # First 401: we were anonymous or had no token for this scope. Second: our cached
                # token was refused (expired/revoked) — fetch a fresh one once.
                refreshed = known is not None
                continue
            if basic and ep.host not in self._basic and self._creds(ep, ref) and attempt < 2:
                self._basic.add(ep.host)
                continue
            creds = self._creds(ep, ref)
            raise AuthError(f"registry refused access to {ref.name}"
                            + (f" for user {creds.username!r}" if creds and creds.username
                               else " (no credentials configured for it)"),
                            url=url, status=401)
        raise AuthError(f"registry keeps refusing {ref.name}", url=url, status=401)

    async def _raise_for(self, resp: aiohttp.ClientResponse, ref: Reference, url: str):
        body = await resp.content.read(64 << 10)
        resp.release()
        code, message = "", ""
        try:
            err = json.loads(body)["errors"][0]
            code, message = err.get("code", ""), err.get("message", "")
        except (ValueError, KeyError, IndexError, TypeError):
            pass
        what = message or resp.reason or "error"
        if resp.status == 404:
            raise NotFound(f"{ref} not found: {what}", url=url, status=404, code=code)
        if resp.status == 403:
            raise AuthError(f"registry denied access to {ref.name}: {what}", url=url,
                            status=403, code=code)
        if resp.status == 429:
            raise RegistryError(f"registry rate limit reached pulling {ref}: {what}", url=url,
                                status=429, code=code)
        raise RegistryError(f"registry error pulling {ref}: {what}", url=url,
                            status=resp.status, code=code)

    # --- the API ---------------------------------------------------------------------------------
    async def get_manifest(self, ref: Reference, selector: str | None = None) -> FetchedManifest:
        selector = selector or ref.selector
        resp, _ = await self._get(ref, f"/v2/{ref.repository}/manifests/{selector}",
                                  {"Accept": ACCEPT})
        async with resp:
            if resp.content_length and resp.content_length > MAX_MANIFEST_BYTES:
                raise RegistryError(f"manifest of {ref} is {resp.content_length} bytes; refusing")
            raw = await resp.content.read(MAX_MANIFEST_BYTES + 1)
            ctype = resp.headers.get("Content-Type", "")
            header_digest = resp.headers.get("Docker-Content-Digest", "")
        if len(raw) > MAX_MANIFEST_BYTES:
            raise RegistryError(f"manifest of {ref} is larger than {MAX_MANIFEST_BYTES} bytes")
        digest = sha256_bytes(raw)
        if selector.startswith("sha256:") and digest != selector:
            raise DigestMismatch("manifest", selector, digest, detail=f"from {ref.name}")
        if header_digest.startswith("sha256:") and header_digest != digest:
            raise DigestMismatch("manifest", header_digest, digest,
                                 detail=f"Docker-Content-Digest header of {ref}")
        return FetchedManifest(raw, ctype, digest)

    async def get_blob_bytes(self, ref: Reference, desc: Descriptor,
                             limit: int = MAX_CONFIG_BYTES) -> bytes:
        """A small blob (an image config) into memory, verified."""
        if desc.size > limit:
            raise RegistryError(f"blob {desc.digest} is {desc.size} bytes, over the {limit} limit")
        resp, _ = await self._get(ref, f"/v2/{ref.repository}/blobs/{desc.digest}")
        async with resp:
            data = await resp.content.read(desc.size + 1)
        actual = sha256_bytes(data)
        if len(data) != desc.size or actual != desc.digest:
            raise DigestMismatch("blob", desc.digest, actual,
                                 detail=f"{len(data)} bytes, descriptor says {desc.size}")
        return data

    async def fetch_blob(self, ref: Reference, desc: Descriptor, partial: Path,
                         progress: ProgressFn | None = None) -> None:
        """Download a blob into `partial` (resuming what is there), verifying size and digest.
        On a mismatch the partial file is deleted and DigestMismatch names the blob."""
        have = partial.stat().st_size if partial.exists() else 0
        hasher = hashlib.sha256()
        if have > desc.size:
            have = 0
        if have:
            hasher = await asyncio.to_thread(_hash_prefix, partial, have)
        headers = {"Range": f"bytes={have}-"} if have else {}
        resp, _ = await self._get(ref, f"/v2/{ref.repository}/blobs/{desc.digest}", headers)
        async with resp:
            if resp.status == 416 and have == desc.size:
                pass                       # we already have every byte
            elif have and resp.status != 206:
                have, hasher = 0, hashlib.sha256()       # the server ignored the range
            elif resp.status == 206 and not resp.headers.get("Content-Range", "").startswith(
                    f"bytes {have}-"):
                raise RegistryError(f"blob {desc.digest}: server answered the wrong range "
                                    f"({resp.headers.get('Content-Range')!r})")
            if resp.status != 416:
                have = await self._stream(resp, partial, have, hasher, desc, progress)
        actual = "sha256:" + hasher.hexdigest()
        if have != desc.size or actual != desc.digest:
            await asyncio.to_thread(_unlink, partial)
            raise DigestMismatch("blob", desc.digest, actual,
                                 detail=f"{have} bytes from {ref.name}, descriptor says {desc.size}")

    async def _stream(self, resp, partial: Path, have: int, hasher, desc: Descriptor,
                      progress: ProgressFn | None) -> int:
        f = await asyncio.to_thread(open, partial, "r+b" if have else "wb")
        try:
            if have:
                await asyncio.to_thread(f.seek, have)
            else:
                await asyncio.to_thread(f.truncate, 0)
            buf = bytearray()
            if progress:
                progress(have)
            async for chunk in resp.content.iter_chunked(1 << 16):
                buf += chunk
                if have + len(buf) > desc.size:
                    break           # more than promised: stop reading; verification fails below
                if len(buf) >= FLUSH_BYTES:
                    await asyncio.to_thread(_write_and_hash, f, hasher, bytes(buf))
                    have += len(buf)
                    buf.clear()
                    if progress:
                        progress(have)
            if buf:
                await asyncio.to_thread(_write_and_hash, f, hasher, bytes(buf))
                have += len(buf)
            if progress:
                progress(have)
        except aiohttp.ClientError as e:
            raise RegistryError(f"download of blob {desc.digest} broke off after {have} bytes "
                                f"(the next pull resumes it): {e}") from e
        finally:
            await asyncio.to_thread(f.close)
        return have


def _hash_prefix(path: Path, n: int):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        left = n
        while left:
            chunk = f.read(min(1 << 20, left))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
    return h


def _write_and_hash(f, hasher, data: bytes) -> None:
    f.write(data)
    hasher.update(data)


def _unlink(p: Path) -> None:
    try:
        os.unlink(p)
    except FileNotFoundError:
        pass
