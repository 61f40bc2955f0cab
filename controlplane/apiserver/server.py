"""The API server process: storage + watch cache + object store behind an aiohttp HTTPS app.

Startup order (each step needs the one before):
  1. PKI (certs.py) — before the event loop serves anything, since it runs `openssl`;
  2. the SQLite store, then the watch cache loaded from it;
  3. default namespaces and the `kubernetes` service (bootstrap.py);
  4. listen on --listen with TLS; write <data-dir>/admin.kubeconfig for local use.

Authentication: every request needs `Authorization: Bearer <admin token>`, except the public
health and version endpoints (the kube-apiserver lets anonymous users read those too). Anything
else gets 401 with a Status, like a real cluster with anonymous auth disabled. A service-account
token (serviceaccounts.py) authenticates its account, which may then do only what upstream's
bootstrap RBAC lets an unbound user do (authorizer.py): discovery, OpenAPI, self reviews.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from controlplane.apiserver import (
    apiextensions, authorizer, bootstrap, certs, discovery, kubeconfig, objects, openapi, proxy, serviceaccounts)
from controlplane.apiserver.errors import (
    APIError, forbidden, internal, not_acceptable, not_found_path, unauthorized)
from controlplane.apiserver.handlers import Handlers
from controlplane.apiserver.requests import json_response
from controlplane.storage.sqlite import SQLiteStorage
from controlplane.storage.watchcache import WatchCache

log = logging.getLogger("nodeagent.apiserver")

PUBLIC = ("/healthz", "/livez", "/readyz", "/version")

# The checks kube-apiserver's /livez, /readyz and /healthz list with ?verbose (and serve one by
# one at /<kind>/<check>) — those that mean something here: storage ("etcd": our SQLite log) is
# open and the post-start steps have run before the server listens, so each holds while it serves.
_LIVE = ("ping", "log", "etcd", "poststarthook/start-apiextensions-informers",
         "poststarthook/crd-informer-synced", "poststarthook/bootstrap-controller",
         "poststarthook/scheduling/bootstrap-system-priority-classes")
HEALTH_CHECKS = {"livez": _LIVE, "healthz": _LIVE,
                 "readyz": _LIVE[:3] + ("etcd-readiness", "informer-sync") + _LIVE[3:] + ("shutdown",)}


@dataclass
class ServerConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 6443
    advertise: list[str] = field(default_factory=list)
    tls: bool = True
    service_cidr: str = "10.96.0.0/12"
    watch_window: int = 10000
    compact_every: float = 300.0  # seconds between compactions of the store's history
    history: int = 50000  # revisions kept by compaction


class APIServer:
    def __init__(self, config: ServerConfig):
        self.config = config
        self.pki: certs.PKI | None = None
        self.storage: SQLiteStorage | None = None
        self.cache: WatchCache | None = None
        self.store: objects.ObjectStore | None = None
        self.runner: web.AppRunner | None = None
        self._compactor: asyncio.Task | None = None
        self.crds: apiextensions.CRDController | None = None
        self.port = config.port

    def prepare_pki(self) -> None:
        """Blocking (openssl): call before the event loop serves."""
        if self.config.tls:
            addrs = list(dict.fromkeys(self.config.advertise + [self.config.host]))
            self.pki = certs.ensure(self.config.data_dir, [a for a in addrs if a not in ("0.0.0.0", "::")])

    @property
    def token(self) -> str | None:
        return self.pki.token if self.pki else None

    @property
    def url(self) -> str:
        host = self.config.host if self.config.host not in ("0.0.0.0", "::") else "127.0.0.1"
        return f"{'https' if self.config.tls else 'http'}://{host}:{self.port}"

    async def start(self) -> None:
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.storage = await SQLiteStorage.open(cfg.data_dir / "state.db")
        self.cache = WatchCache(self.storage, objects.decode, window=cfg.watch_window)
        await self.cache.start("/registry/")
        self.store = objects.ObjectStore(self.storage, self.cache, cfg.service_cidr)
        # CustomResourceDefinitions: served from the store's CRDs (after the cache subscribed)
        self.crds = apiextensions.CRDController(self.store)
        self.crds.start()
        app = self.make_app()
        # handler_cancellation: a client that hangs up cancels its handler, so a watch stops at once.
        # shutdown_timeout: open watches would otherwise hold a restart for a minute.
        self.runner = web.AppRunner(app, access_log=None, handler_cancellation=True,
                                    shutdown_timeout=2.0)
        await self.runner.setup()
        ctx = None
        if self.pki:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(self.pki.cert, self.pki.key)
        site = web.TCPSite(self.runner, cfg.host, cfg.port, ssl_context=ctx, backlog=1024)
        await site.start()
        if cfg.port == 0:  # tests ask for any free port
            self.port = site._server.sockets[0].getsockname()[1]
        advertise = (cfg.advertise or [cfg.host if cfg.host not in ("0.0.0.0", "::") else "127.0.0.1"])[0]
        await bootstrap.ensure_defaults(self.store, advertise, self.port)
        if self.pki:
            kubeconfig.write(cfg.data_dir / "admin.kubeconfig", self.url, self.pki)
        self._compactor = asyncio.get_running_loop().create_task(self._compact_loop())
        log.info("serving on %s (revision %d)", self.url, self.cache.revision)

    async def _compact_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.compact_every)
            target = self.storage.revision - self.config.history
            if target > self.storage.compacted_revision:
                await self.storage.compact(target)

    async def stop(self) -> None:
        if self._compactor:
            self._compactor.cancel()
        if self.crds:
            self.crds.stop()
        if self.cache:
            self.cache.close()  # open watches end now instead of holding the shutdown
        if self.runner:
            await self.runner.cleanup()
        if self.store:
            await self.store.close()
        if self.storage:
            await self.storage.close()

    # ---- the app ----

    def make_app(self) -> web.Application:
        sa_key = serviceaccounts.SigningKey.load(self.pki.sa_key) if self.pki else None
        h = Handlers(self.store, sa_key)
        advertise = f"{self.config.host}:{self.port}"
        token = self.token

        @web.middleware
        async def errors_and_auth(request: web.Request, handler):
            try:
                if token is not None and request.path not in PUBLIC:
                    auth = request.headers.get("Authorization", "")
                    bearer = auth[7:].strip() if auth.startswith("Bearer ") else ""
                    if not (bearer and hmac.compare_digest(bearer.encode(), token.encode())):
                        # else a service-account token (serviceaccounts.py), or 401
                        user = bearer and sa_key and serviceaccounts.authenticate(
                            sa_key, self.store.cache, bearer)
                        if not user:
                            raise unauthorized()
                        request["user"] = user
                        # Not the admin: only what an unbound user may do (authorizer.py)
                        authorizer.authorize(user, request.method, request.path, request.query)
                _refuse_impersonation(request)
                return await handler(request)
            except APIError as e:
                resp = json_response(e.status(), e.code)
                if (e.details or {}).get("retryAfterSeconds"):
                    resp.headers["Retry-After"] = str(e.details["retryAfterSeconds"])
                return resp
            except web.HTTPException:
                raise
            except (ConnectionResetError, asyncio.CancelledError):
                raise
            except Exception as e:  # a bug: answer like the kube-apiserver does, and log it
                log.exception("internal error on %s %s", request.method, request.path)
                err = internal(f"{type(e).__name__}: {e}")
                return json_response(err.status(), 500)

        app = web.Application(middlewares=[errors_and_auth], client_max_size=8 * 1024 * 1024)

        async def health(request):
            kind = request.path.strip("/").split("/")[0]
            checks = HEALTH_CHECKS[kind]
            one = request.match_info.get("check")
            if one is not None:
                if one not in checks:
                    raise not_found_path()
                return web.Response(text="ok")
            if "verbose" not in request.query:
                return web.Response(text="ok")
            excluded = set(request.query.getall("exclude", []))
            lines = [f"[+]{c} excluded: ok" if c in excluded else f"[+]{c} ok" for c in checks]
            return web.Response(text="\n".join(lines + [f"{kind} check passed", ""]))

        async def openapi_v2(request):
            # As kube-openapi's handler: JSON, or gnostic protobuf for client-go (openapi/v2proto.py)
            accept = request.headers.get("Accept", "")
            if any(t in accept for t in openapi.v2proto.MEDIA_TYPES):
                return web.Response(body=openapi.v2_protobuf(),
                                    content_type=openapi.v2proto.MEDIA_TYPES[1])
            if accept and "json" not in accept and "*/*" not in accept:
                raise not_acceptable("only application/json and "
                                     f"{openapi.v2proto.MEDIA_TYPES[1]} are served for /openapi/v2")
            return web.Response(body=openapi.v2_document(), content_type="application/json")

        async def openapi_v3_index(request):
            return web.Response(body=openapi.v3_index(), content_type="application/json")

        async def openapi_v3(request):
            doc = openapi.v3_documents().get(request.match_info["gv"])
            if doc is None:
                raise not_found_path()
            resp = web.Response(body=doc, content_type="application/json")
            if request.query.get("hash"):  # content-addressed: cache forever
                resp.headers["Cache-Control"] = "public, immutable"
                resp.headers["Expires"] = time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                                        time.gmtime(time.time() + 365 * 86400))
            return resp

        r = app.router
        for p in ("/healthz", "/livez", "/readyz"):
            r.add_get(p, health)
            r.add_get(p + "/{check:.+}", health)
        r.add_get("/version", discovery.version)
        r.add_get("/api", lambda request: discovery.api(request, advertise))
        r.add_get("/apis", discovery.apis)
        r.add_get("/openapi/v2", openapi_v2)
        r.add_get("/openapi/v3", openapi_v3_index)
        r.add_get("/openapi/v3/{gv:.+}", openapi_v3)
        r.add_get(r"/api/{version:[^/]+}", discovery.group_or_resources)
        r.add_get(r"/apis/{group:[^/]+}", discovery.group_or_resources)
        r.add_get(r"/apis/{group:[^/]+}/{version:[^/]+}", discovery.group_or_resources)
        if self.pki:  # logs, exec, attach, port-forward, nodes/proxy: forwarded to kubelets
            proxy.KubeletProxy(self.store, self.pki.kubelet_client_cert, self.pki.kubelet_client_key).register(r)
        r.add_route("*", "/api/{tail:.+}", h.handle)
        r.add_route("*", "/apis/{tail:.+}", h.handle)
        return app


# Impersonate-* headers and the resource an authorizer would check for each (upstream's
# impersonation filter asks "may the caller impersonate users/<name>?" and so on).
_IMPERSONATION = (("Impersonate-User", "users"), ("Impersonate-Uid", "uids"),
                  ("Impersonate-Group", "groups"))


def _refuse_impersonation(request: web.Request) -> None:
    """`kubectl --as/--as-group` sends Impersonate-* headers. Until authorization gives
    impersonation a meaning, a request carrying them is refused (403) — never run as the caller,
    which would silently grant the caller's rights to what was meant as a lesser identity."""
    for header, resource in _IMPERSONATION:
        value = request.headers.get(header)
        if value is not None:
            break
    else:
        extra = next((h for h in request.headers if h.lower().startswith("impersonate-extra-")), None)
        if extra is None:
            return
        value, resource = request.headers[extra], "userextras/" + extra[len("impersonate-extra-"):]
    group = "" if resource in ("users", "groups") else "authentication.k8s.io"
    raise forbidden(resource, group, value, f'User "kubernetes-admin" cannot impersonate resource '
                    f'"{resource}" in API group "{group}" at the cluster scope: impersonation is '
                    f'not supported by this API server yet')

