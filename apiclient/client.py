"""An asyncio client for the Kubernetes REST API (ours, or any real cluster's).

    async with ApiClient(load_kubeconfig()) as api:
        pod = await api.get(PODS, "web", namespace="default")
        pods, rv = await api.list_all(PODS, field_selector="spec.nodeName=node-1")
        async for ev in api.watch(PODS, resource_version=rv):   # ADDED / MODIFIED / DELETED
            ...

Writes use optimistic concurrency the Kubernetes way: `update` sends the object with the
`metadata.resourceVersion` it was read at, and the server refuses it with 409 (Conflict) if
someone wrote in between; `update_with_retry` is the read-modify-write loop around that
(client-go's RetryOnConflict). Failures raise the typed errors of apiclient.errors.

A watch that falls behind the server's event window gets an ERROR event holding a 410 Status;
`watch` raises `Expired` for it, and the caller (see informer.py) lists again.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable
from urllib.parse import quote

import aiohttp

from apiclient.config import ClientConfig
from apiclient.errors import ApiError, Conflict, Expired, Unreachable, from_status

JSON = "application/json"
PATCH_TYPES = {"json": "application/json-patch+json", "merge": "application/merge-patch+json",
               "strategic": "application/strategic-merge-patch+json"}


@dataclass(frozen=True)
class Resource:
    """A REST collection: group, version, plural name and whether it lives in namespaces."""

    group: str
    version: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name, safe='')}"
            if subresource:
                base += f"/{subresource}"
        return base


NAMESPACES = Resource("", "v1", "namespaces", False)
NODES = Resource("", "v1", "nodes", False)
PODS = Resource("", "v1", "pods", True)
SERVICES = Resource("", "v1", "services", True)
ENDPOINTS = Resource("", "v1", "endpoints", True)
CONFIGMAPS = Resource("", "v1", "configmaps", True)
SECRETS = Resource("", "v1", "secrets", True)
EVENTS = Resource("", "v1", "events", True)
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts", True)
DEPLOYMENTS = Resource("apps", "v1", "deployments", True)
REPLICASETS = Resource("apps", "v1", "replicasets", True)
DAEMONSETS = Resource("apps", "v1", "daemonsets", True)
LEASES = Resource("coordination.k8s.io", "v1", "leases", True)
ENDPOINTSLICES = Resource("discovery.k8s.io", "v1", "endpointslices", True)


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED | BOOKMARK
    object: dict

    @property
    def resource_version(self) -> str:
        return (self.object.get("metadata") or {}).get("resourceVersion", "")


def _ns(obj: dict, namespace: str | None) -> str | None:
    return namespace or (obj.get("metadata") or {}).get("namespace")


class ApiClient:
    """Owns one aiohttp session (connection pool); close it with `await close()` or `async with`."""

    def __init__(self, config: ClientConfig, timeout: float = 30.0, user_agent: str = "nodeagent"):
        self.config = config
        self.timeout = timeout
        self._ssl = config.ssl_context()
        headers = {"User-Agent": user_agent, "Accept": JSON}
        if config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        self._session = aiohttp.ClientSession(
            base_url=config.server, headers=headers,
            connector=aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else False, limit=64))

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        await self._session.close()

    # ---- plumbing ----

    async def request(self, method: str, path: str, params: dict | None = None, body: Any = None,
                      content_type: str = JSON) -> dict:
        params = {k: str(v).lower() if isinstance(v, bool) else str(v)
                  for k, v in (params or {}).items() if v is not None}
        data = json.dumps(body).encode() if body is not None else None
        try:
            async with self._session.request(
                    method, path, params=params, data=data,
                    headers={"Content-Type": content_type} if data is not None else None,
                    timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    try:
                        status = json.loads(raw)
                    except ValueError:
                        status = None
                    raise from_status(resp.status, status, raw.decode(errors="replace")[:200])
                return json.loads(raw) if raw else {}
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            raise Unreachable(0, "Unreachable", f"{method} {self.config.server}{path}: {e!r}") from e

    # ---- verbs ----

    async def get(self, res: Resource, name: str, namespace: str | None = None,
                  subresource: str | None = None) -> dict:
        return await self.request("GET", res.path(namespace, name, subresource))

    async def list(self, res: Resource, namespace: str | None = None, *, label_selector: str | None = None,
                   field_selector: str | None = None, limit: int | None = None,
                   continue_: str | None = None, resource_version: str | None = None) -> dict:
        return await self.request("GET", res.path(namespace), {
            "labelSelector": label_selector, "fieldSelector": field_selector, "limit": limit,
            "continue": continue_, "resourceVersion": resource_version})

    async def list_all(self, res: Resource, namespace: str | None = None, *, page: int = 500,
                       **selectors) -> tuple[list[dict], str]:
        """Every matching object, page by page (one consistent snapshot); (items, resourceVersion)."""
        items: list[dict] = []
        token = None
        while True:
            out = await self.list(res, namespace, limit=page, continue_=token, **selectors)
            items.extend(out.get("items") or [])
            token = (out.get("metadata") or {}).get("continue")
            if not token:
                return items, out["metadata"]["resourceVersion"]

    async def create(self, res: Resource, obj: dict, namespace: str | None = None,
                     dry_run: bool = False, subresource: str | None = None,
                     name: str | None = None) -> dict:
        path = res.path(_ns(obj, namespace), name, subresource) if subresource else res.path(_ns(obj, namespace))
        return await self.request("POST", path, {"dryRun": "All" if dry_run else None}, obj)

    async def update(self, res: Resource, obj: dict, namespace: str | None = None,
                     subresource: str | None = None, dry_run: bool = False) -> dict:
        """PUT the object; Conflict if its metadata.resourceVersion is no longer current."""
        name = obj["metadata"]["name"]
        return await self.request("PUT", res.path(_ns(obj, namespace), name, subresource),
                                  {"dryRun": "All" if dry_run else None}, obj)

    async def update_status(self, res: Resource, obj: dict, namespace: str | None = None) -> dict:
        return await self.update(res, obj, namespace, "status")

    async def patch(self, res: Resource, name: str, patch: Any, namespace: str | None = None,
                    type: str = "merge", subresource: str | None = None, dry_run: bool = False) -> dict:
        return await self.request("PATCH", res.path(namespace, name, subresource),
                                  {"dryRun": "All" if dry_run else None}, patch, PATCH_TYPES[type])

    async def delete(self, res: Resource, name: str, namespace: str | None = None, *,
                     grace_period_seconds: int | None = None, uid: str | None = None,
                     resource_version: str | None = None) -> dict:
        body: dict = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        pre = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        if pre:
            body["preconditions"] = pre
        return await self.request("DELETE", res.path(namespace, name), None, body)

    async def update_with_retry(self, res: Resource, name: str, mutate: Callable[[dict], dict | None],
                                namespace: str | None = None, subresource: str | None = None,
                                attempts: int = 10) -> dict:
        """Read, apply `mutate` (returns the new object, or None for "no change"), write with the
        read resourceVersion; on Conflict read again. Returns the stored object."""
        for _ in range(attempts):
            cur = await self.get(res, name, namespace)
            new = mutate(json.loads(json.dumps(cur)))
            if new is None:
                return cur
            try:
                return await self.update(res, new, namespace, subresource)
            except Conflict:
                continue
        raise Conflict(409, "Conflict", f"{res.plural}/{name}: still conflicting after {attempts} tries")

    async def watch(self, res: Resource, namespace: str | None = None, *,
                    resource_version: str | None = None, label_selector: str | None = None,
                    field_selector: str | None = None, allow_bookmarks: bool = True,
                    timeout_seconds: int | None = None,
                    send_initial_events: bool = False) -> AsyncIterator[WatchEvent]:
        """Events after resource_version until the server ends the stream. Raises Expired when
        the server says the version is too old (then list again)."""
        params = {"watch": "true", "resourceVersion": resource_version,
                  "labelSelector": label_selector, "fieldSelector": field_selector,
                  "allowWatchBookmarks": "true" if allow_bookmarks or send_initial_events else None,
                  "timeoutSeconds": timeout_seconds}
        if send_initial_events:
            params.update(sendInitialEvents="true", resourceVersionMatch="NotOlderThan")
        params = {k: str(v) for k, v in params.items() if v is not None}
        try:
            async with self._session.get(res.path(namespace), params=params,
                                         timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as resp:
                if resp.status >= 400:
                    raw = await resp.read()
                    try:
                        status = json.loads(raw)
                    except ValueError:
                        status = None
                    raise from_status(resp.status, status, raw.decode(errors="replace")[:200])
                async for line in resp.content:
                    if not line.strip():
                        continue
                    ev = json.loads(line)
                    if ev.get("type") == "ERROR":
                        raise from_status(ev["object"].get("code", 500), ev["object"])
                    yield WatchEvent(ev["type"], ev["object"])
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            raise Unreachable(0, "Unreachable", f"watch {res.plural}: {e!r}") from e


__all__ = ["ApiClient", "ApiError", "Expired", "Resource", "WatchEvent"]
