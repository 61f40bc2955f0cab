"""Real registries on loopback for the image tests, and the small servers around them.

    Registry      Debian's `docker-registry` (CNCF distribution 2.8), a real process on 127.0.0.1
                  with its own storage directory; optionally with token auth (`auth: token:`).
    TokenServer   issues the JWTs that registry verifies: ES256, signed with a throwaway key whose
                  self-signed certificate is the registry's `rootcertbundle`, the key's certificate
                  in the `x5c` header (distribution's registry/auth/token/token.go accepts that).
                  Repositories under `private/` need HTTP basic credentials alice:wonderland.
    FrontDoor     a reverse proxy in front of a registry that can (a) answer blob GETs with a 307 to
                  BlobStorage on *another* loopback host, as Docker Hub redirects to its CDN, and
                  (b) throttle one blob, so a test can kill a pull half way. It logs every request.
    BlobStorage   the "CDN" on 127.0.0.2: serves blobs (fetched from the open registry), honours
                  Range, and rejects — and records — any request carrying an Authorization header.

The aiohttp servers run on an event loop in a background thread (LoopThread), so synchronous tests
and subprocesses (the `nodeagent` CLI) can talk to them. Everything binds to loopback only, on ports
chosen by the kernel, so parallel runs never collide.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import ClientSession, web


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LoopThread:
    """An asyncio loop in a daemon thread; run(coro) runs a coroutine there and waits for it."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


async def _serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


# --- the real registry ----------------------------------------------------------------------------
class Registry:
    def __init__(self, workdir: Path, storage: Path, *, token: "TokenServer | None" = None):
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.storage = storage
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        auth = ""
        if token:
            auth = (f"auth:\n  token:\n    realm: {token.url}/token\n    service: {token.service}\n"
                    f"    issuer: {token.issuer}\n    rootcertbundle: {token.cert_path}\n")
        cfg = workdir / "config.yml"
        cfg.write_text(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n  secret: {secrets.token_hex(16)}\n" + auth)
        self.log = open(workdir / "registry.log", "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(cfg)], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
                break
            except urllib.error.HTTPError:
                break                      # 401 from a token-auth registry: it is up
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"docker-registry did not start: "
                                       f"{(workdir / 'registry.log').read_text()[-2000:]}")
                time.sleep(0.05)

    def blob_data_path(self, digest: str) -> Path:
        hexd = digest.removeprefix("sha256:")
        return self.storage / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"

    def push(self, layout: Path, tag: str, repo: str, *, all_: bool = False) -> None:
        argv = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
        if all_:
            argv.append("--all")
        subprocess.run(argv + [f"oci:{layout}:{tag}", f"docker://{self.host}/{repo}:{tag}"],
                       check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)     # by pid: the process we started
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# --- the token server -------------------------------------------------------------------------------
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenServer:
    workdir: Path
    service: str = "nodeagent-test-registry"
    issuer: str = "nodeagent-test-issuer"
    users: dict = field(default_factory=lambda: {"alice": "wonderland"})
    expires_in: int = 300          # what we tell the client
    registry_lifetime: int = 300   # what we put in `exp` (the registry adds 60 s of leeway)
    port: int = 0
    requests: list = field(default_factory=list)

    def __post_init__(self):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nodeagent test token signer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(self.key, hashes.SHA256()))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cert_path = self.workdir / "token-cert.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.port = self.port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def sign(self, claims: dict) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        header = {"typ": "JWT", "alg": "ES256", "x5c": [self.x5c]}
        signing_input = (_b64url(json.dumps(header).encode()) + "." +
                         _b64url(json.dumps(claims).encode()))
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    async def handle(self, request: web.Request) -> web.Response:
        scope = request.query.get("scope", "")
        user = None
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
            if self.users.get(u) != p:
                self.requests.append({"scope": scope, "user": u, "granted": False})
                return web.json_response({"details": "bad credentials"}, status=401)
            user = u
        access = []
        for part in scope.split(" "):
            typ, _, rest = part.partition(":")
            repo, _, actions = rest.rpartition(":")
            if typ == "repository" and repo and (not repo.startswith("private/") or user):
                access.append({"type": "repository", "name": repo, "actions": ["pull"]})
        self.requests.append({"scope": scope, "user": user, "granted": bool(access)})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": user or "", "aud": request.query.get("service", ""),
                  "exp": now + self.registry_lifetime, "nbf": now - 10, "iat": now,
                  "jti": secrets.token_hex(8), "access": access}
        return web.json_response({"token": self.sign(claims), "expires_in": self.expires_in,
                                  "issued_at": datetime.datetime.now(
                                      datetime.timezone.utc).isoformat()})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/token", self.handle)
        self.runner = await _serve(app, "127.0.0.1", self.port)

    async def stop(self) -> None:
        await self.runner.cleanup()


# --- the redirecting, throttling front door and the "CDN" ------------------------------------------
@dataclass
class BlobStorage:
    """Serves /blobs/<digest> from `upstream` (an open registry, repo `repo`); refuses Authorization."""

    upstream: str
    repo: str
    host: str = "127.0.0.2"
    port: int = 0
    requests: list = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        digest = request.match_info["digest"]
        self.requests.append({"digest": digest, "authorization": request.headers.get("Authorization"),
                              "range": request.headers.get("Range")})
        if "Authorization" in request.headers:
            return web.Response(status=400, text="only one auth mechanism allowed")
        fwd = {"Range": request.headers["Range"]} if "Range" in request.headers else {}
        async with self.session.get(f"http://{self.upstream}/v2/{self.repo}/blobs/{digest}",
                                    headers=fwd) as up:
            resp = web.StreamResponse(status=up.status, headers={
                k: v for k, v in up.headers.items() if k in ("Content-Length", "Content-Range",
                                                            "Content-Type")})
            await resp.prepare(request)
            async for chunk in up.content.iter_chunked(1 << 16):
                await resp.write(chunk)
            await resp.write_eof()
            return resp

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self.port = self.port or free_port(self.host)
        self.session = ClientSession()
        app = web.Application()
        app.router.add_get("/blobs/{digest}", self.handle)
        self.runner = await _serve(app, self.host, self.port)

    async def stop(self) -> None:
        await self.runner.cleanup()
        await self.session.close()


@dataclass
class FrontDoor:
    """Reverse proxy to `upstream`. redirect_to: a BlobStorage; throttle: digest → bytes/second."""

    upstream: str
    redirect_to: BlobStorage | None = None
    throttle: dict = field(default_factory=dict)
    basic_auth: tuple | None = None   # (user, password): answer 401 Basic like an htpasswd registry
    port: int = 0
    requests: list = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["tail"]
        self.requests.append({"method": request.method, "path": "/v2/" + path,
                              "range": request.headers.get("Range"),
                              "authorization": bool(request.headers.get("Authorization"))})
        if self.basic_auth:
            want = "Basic " + base64.b64encode(":".join(self.basic_auth).encode()).decode()
            if request.headers.get("Authorization") != want:
                return web.json_response(
                    {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                    status=401, headers={"WWW-Authenticate": 'Basic realm="basic-realm"'})
        if self.redirect_to and "/blobs/sha256:" in path and request.method == "GET":
            digest = path.rsplit("/", 1)[1]
            return web.Response(status=307, headers={
                "Location": f"{self.redirect_to.url}/blobs/{digest}?X-Signature={secrets.token_hex(8)}"})
        fwd = {k: v for k, v in request.headers.items()
               if k in ("Accept", "Range", "User-Agent") or (k == "Authorization" and not self.basic_auth)}
        async with self.session.request(request.method, f"http://{self.upstream}/v2/{path}",
                                        headers=fwd, allow_redirects=False) as up:
            resp = web.StreamResponse(status=up.status, headers={
                k: v for k, v in up.headers.items()
                if k in ("Content-Length", "Content-Range", "Content-Type", "WWW-Authenticate",
                         "Docker-Content-Digest", "Location", "Docker-Distribution-Api-Version")})
            await resp.prepare(request)
            rate = next((r for d, r in self.throttle.items() if path.endswith(d)), None)
            async for chunk in up.content.iter_chunked(1 << 14):
                await resp.write(chunk)
                if rate:
                    await asyncio.sleep(len(chunk) / rate)
            await resp.write_eof()
            return resp

    async def start(self) -> None:
        self.port = self.port or free_port()
        self.session = ClientSession()
        app = web.Application()
        app.router.add_route("*", "/v2/{tail:.*}", self.handle)
        self.runner = await _serve(app, "127.0.0.1", self.port)

    async def stop(self) -> None:
        await self.runner.cleanup()
        await self.session.close()


def registry_available() -> str | None:
    """None if the real registry and skopeo are installed, else why not (for skip messages)."""
    for tool in ("docker-registry", "skopeo"):
        if not any(os.access(os.path.join(d, tool), os.X_OK)
                   for d in os.environ.get("PATH", "/usr/bin").split(":")):
            return f"{tool} is not installed (scripts/deps/apt-test.txt; run scripts/test.sh)"
    return None
