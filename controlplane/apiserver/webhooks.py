"""Admission webhooks: asking the cluster's own services whether (and how) a write may happen.

A MutatingWebhookConfiguration or ValidatingWebhookConfiguration lists webhooks; each names what
it wants to see (rules: operations × apiGroups × apiVersions × resources, plus a scope and
namespace/object label selectors) and where to send it (a URL, or a Service: its ClusterIP, with
TLS checked against `caBundle` for the name <service>.<namespace>.svc). For every matching write
the API server POSTs an admission.k8s.io/v1 AdmissionReview and reads the answer:

- mutating webhooks (before validation) may return a JSONPatch the object is changed by;
- validating webhooks (after validation, before storing) may only allow or deny;
- a denial is the webhook's Status, worded `admission webhook "<name>" denied the request: ...`;
- a webhook that cannot be reached or answers nonsense is a 500 `failed calling webhook` when
  its failurePolicy is Fail (the default), and is skipped when it is Ignore.

The webhook configurations themselves are never sent to webhooks (so a broken webhook cannot
lock itself in), as upstream. Reinvocation, matchConditions and ValidatingAdmissionPolicy (CEL)
are not evaluated yet. Written from admission/plugin/webhook in k8s.io/apiserver.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
import uuid

import aiohttp

from controlplane.apiserver import patch as patching
from controlplane.apiserver.errors import APIError, internal
from controlplane.apiserver.resources import ResourceType
from controlplane.apiserver.selectors import selector_from_match
from controlplane.storage.watchcache import WatchCache

log = logging.getLogger("nodeagent.apiserver")

MUTATING = "/registry/mutatingwebhookconfigurations/"
VALIDATING = "/registry/validatingwebhookconfigurations/"
_EXEMPT = ("mutatingwebhookconfigurations", "validatingwebhookconfigurations")
USER = {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]}


def _has(values, v: str) -> bool:
    return "*" in (values or []) or v in (values or [])


def _resource_matches(patterns, resource: str, sub: str) -> bool:
    for p in patterns or []:
        r, _, s = p.partition("/")
        if (r == "*" or r == resource) and ((not s and not sub) or s == "*" or (s and s == sub)):
            return True
    return False


def _rule_matches(rule: dict, rt: ResourceType, op: str, sub: str) -> bool:
    scope = rule.get("scope") or "*"
    if scope == "Cluster" and rt.namespaced or scope == "Namespaced" and not rt.namespaced:
        return False
    return (_has(rule.get("operations"), op) and _has(rule.get("apiGroups"), rt.group) and
            _has(rule.get("apiVersions"), rt.version) and
            _resource_matches(rule.get("resources"), rt.plural, sub))


def _selected(selector: dict | None, labels: dict) -> bool:
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return True  # empty selector: everything
    return selector_from_match(selector).matches(labels)


def _matching(cache: WatchCache, prefix: str, rt: ResourceType, op: str, sub: str,
              obj: dict | None, old: dict | None) -> list[dict]:
    if rt.plural in _EXEMPT:
        return []
    entries = cache.list(prefix)[0]
    if not entries:
        return []  # the common case: no webhooks at all, nothing more to look at
    labels = [((o or {}).get("metadata") or {}).get("labels") or {} for o in (obj, old) if o]
    ns_labels: dict = {}
    if rt.namespaced:
        ns = ((obj or old or {}).get("metadata") or {}).get("namespace")
        e = cache.get(f"/registry/namespaces/{ns}")
        ns_labels = ((e.obj.get("metadata") or {}).get("labels") or {}) if e else {}
    elif rt.kind == "Namespace":
        ns_labels = labels[0] if labels else {}
    out = []
    for e in entries:
        for w in e.obj.get("webhooks") or []:
            if not any(_rule_matches(r, rt, op, sub) for r in w.get("rules") or []):
                continue
            if (rt.namespaced or rt.kind == "Namespace") and \
                    not _selected(w.get("namespaceSelector"), ns_labels):
                continue
            if not any(_selected(w.get("objectSelector"), lb) for lb in labels or [{}]):
                continue
            out.append(w)
    return out


def _target(w: dict, cache: WatchCache) -> tuple[str, str | None]:
    """(URL to post to, TLS server name) of a webhook's clientConfig."""
    cc = w.get("clientConfig") or {}
    if cc.get("url"):
        return cc["url"], None
    svc = cc.get("service") or {}
    e = cache.get(f"/registry/services/{svc.get('namespace')}/{svc.get('name')}")
    ip = ((e.obj.get("spec") or {}).get("clusterIP") if e else None)
    if not ip or ip == "None":
        raise ConnectionError(f'service "{svc.get("namespace")}/{svc.get("name")}" has no cluster IP')
    return (f"https://{ip}:{svc.get('port', 443)}{svc.get('path') or ''}",
            f"{svc.get('name')}.{svc.get('namespace')}.svc")


async def _call(w: dict, review: dict, cache: WatchCache) -> dict:
    url, server_name = _target(w, cache)
    ctx = ssl.create_default_context()
    bundle = (w.get("clientConfig") or {}).get("caBundle")
    if bundle:
        ctx = ssl.create_default_context(cadata=base64.b64decode(bundle).decode())
    timeout = aiohttp.ClientTimeout(total=w.get("timeoutSeconds") or 10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        kw = {"ssl": ctx} if url.startswith("https") else {}
        if server_name:
            kw["server_hostname"] = server_name
        async with session.post(url, json=review, **kw) as resp:
            if resp.status != 200:
                raise ConnectionError(f"the server responded with status {resp.status}")
            body = await resp.json(content_type=None)
    response = (body or {}).get("response") if isinstance(body, dict) else None
    if not isinstance(response, dict):
        raise ValueError("expected response in AdmissionReview")
    if response.get("uid") != review["request"]["uid"]:
        raise ValueError(f"expected response.uid=\"{review['request']['uid']}\", got "
                         f"\"{response.get('uid')}\"")
    return response


def _review(rt: ResourceType, op: str, sub: str, obj: dict | None, old: dict | None,
            dry_run: bool) -> dict:
    md = (obj or old or {}).get("metadata") or {}
    kind = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    resource = {"group": rt.group, "version": rt.version, "resource": rt.plural}
    options_kind = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}[op]
    request = {"uid": str(uuid.uuid4()), "kind": kind, "resource": resource, "requestKind": kind,
               "requestResource": resource, "name": md.get("name", ""), "operation": op,
               "userInfo": USER, "object": obj, "oldObject": old, "dryRun": dry_run,
               "options": {"kind": options_kind, "apiVersion": "meta.k8s.io/v1"}}
    if sub:
        request["subResource"] = request["requestSubResource"] = sub
    if rt.namespaced:
        request["namespace"] = md.get("namespace", "")
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def _denied(name: str, response: dict) -> APIError:
    status = response.get("status") or {}
    code = status.get("code") or 400
    code = code if code >= 400 else 400
    text = f'admission webhook "{name}" denied the request'
    why = status.get("message") or status.get("reason")
    return APIError(code, status.get("reason") or "", f"{text}: {why}" if why else
                    f"{text} without explanation", status.get("details"))


async def _ask(w: dict, review: dict, cache: WatchCache) -> dict | None:
    """The webhook's response, or None when it failed and its failurePolicy says Ignore."""
    try:
        return await _call(w, review, cache)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError, ssl.SSLError) as e:
        if (w.get("failurePolicy") or "Fail") == "Ignore":
            log.warning("webhook %s failed, ignored: %s", w.get("name"), e)
            return None
        raise internal(f'failed calling webhook "{w.get("name")}": failed to call webhook: '
                       f'Post "{_target_text(w)}": {_why(e)}') from None


def _why(e: Exception) -> str:
    """Go's words for the usual failures (`dial tcp ...: connect: connection refused`)."""
    if isinstance(e, aiohttp.ClientConnectorError):
        if isinstance(e.os_error, ConnectionRefusedError):
            return f"dial tcp {e.host}:{e.port}: connect: connection refused"
        return f"dial tcp {e.host}:{e.port}: {e.os_error.strerror or e.os_error}"
    if isinstance(e, asyncio.TimeoutError):
        return "context deadline exceeded"
    return str(e) or type(e).__name__


def _target_text(w: dict) -> str:
    cc = w.get("clientConfig") or {}
    if cc.get("url"):
        return cc["url"]
    svc = cc.get("service") or {}
    return f"https://{svc.get('name')}.{svc.get('namespace')}.svc:{svc.get('port', 443)}{svc.get('path') or ''}"


async def mutate(cache: WatchCache, rt: ResourceType, op: str, sub: str, obj: dict,
                 old: dict | None, dry_run: bool) -> dict:
    """Run the matching mutating webhooks in order; returns the (possibly patched) object."""
    for w in _matching(cache, MUTATING, rt, op, sub, obj, old):
        review = _review(rt, op, sub, obj, old, dry_run)
        response = await _ask(w, review, cache)
        if response is None:
            continue
        if not response.get("allowed"):
            raise _denied(w.get("name", ""), response)
        if response.get("patch"):
            if response.get("patchType", "JSONPatch") != "JSONPatch":
                raise internal(f'failed calling webhook "{w.get("name")}": unsupported patch type '
                               f'"{response.get("patchType")}"')
            try:
                ops = json.loads(base64.b64decode(response["patch"]))
                obj = patching.json_patch(obj, ops)
            except (ValueError, patching.PatchError) as e:
                raise internal(f'failed calling webhook "{w.get("name")}": {e}') from None
    return obj


async def validate(cache: WatchCache, rt: ResourceType, op: str, sub: str, obj: dict | None,
                   old: dict | None, dry_run: bool) -> None:
    """Run the matching validating webhooks (concurrently, as upstream); any denial refuses."""
    hooks = _matching(cache, VALIDATING, rt, op, sub, obj, old)
    if not hooks:
        return
    answers = await asyncio.gather(*(_ask(w, _review(rt, op, sub, obj, old, dry_run), cache)
                                     for w in hooks))
    for w, response in zip(hooks, answers):
        if response is not None and not response.get("allowed"):
            raise _denied(w.get("name", ""), response)


def any_configured(cache: WatchCache) -> bool:
    return bool(cache.list(MUTATING)[0] or cache.list(VALIDATING)[0])
