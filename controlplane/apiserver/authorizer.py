"""Authorization for users other than the admin: what upstream's bootstrap RBAC gives every
authenticated user when nothing is bound to it, and no more.

Why this exists before access control does: service-account tokens (serviceaccounts.py) are
mounted into every pod, so without this any process in any container could do what the admin
does. A cluster built by kubeadm, with RBAC and no RoleBindings for the account, lets such a
token do exactly three things — the ClusterRoles bound to `system:authenticated` by default:
  - system:discovery / system:public-info-viewer: GET of the discovery and OpenAPI documents,
    /version and the health checks (non-resource URLs);
  - system:basic-user: create selfsubjectreviews, selfsubjectaccessreviews and
    selfsubjectrulesreviews (`kubectl auth whoami`, `kubectl auth can-i`).
Everything else is 403 with upstream's message. The admin token is not checked here (it stands
for system:masters). RBAC proper — Roles, bindings, the authorizer reading them — replaces this
module when the access-control work lands; its answers for an unbound account stay the same.
"""

from __future__ import annotations

from controlplane.apiserver.errors import APIError

# GET-only non-resource paths (system:discovery, system:public-info-viewer): exact, or prefixes.
_NONRESOURCE_EXACT = frozenset({"/api", "/apis", "/version", "/healthz", "/livez", "/readyz",
                                "/openapi/v2", "/openapi/v3"})
_NONRESOURCE_PREFIXES = ("/openapi/v3/", "/healthz/", "/livez/", "/readyz/", "/version/")

# (group, resource) a basic user may create (system:basic-user).
_SELF_REVIEWS = frozenset({("authentication.k8s.io", "selfsubjectreviews"),
                           ("authorization.k8s.io", "selfsubjectaccessreviews"),
                           ("authorization.k8s.io", "selfsubjectrulesreviews")})

_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def parse(method: str, path: str, query) -> dict:
    """Request attributes as upstream's RequestInfoResolver derives them: a resource request
    (verb, group, namespace, resource, subresource, name) or a non-resource path."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        rest = None
    if not rest:  # /api, /api/v1, /apis/<g>, /apis/<g>/<v>: discovery, a non-resource URL
        return {"resource_request": False, "verb": method.lower(), "path": path}
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    elif rest[0] == "namespaces" and len(rest) == 2:
        namespace = rest[1]
    resource, name, sub = rest[0], (rest[1] if len(rest) > 1 else ""), "/".join(rest[2:])
    if method in ("GET", "HEAD"):
        verb = "watch" if query.get("watch") in ("1", "true") else ("get" if name else "list")
    elif method == "DELETE" and not name:
        verb = "deletecollection"
    else:
        verb = _VERBS.get(method, method.lower())
    return {"resource_request": True, "verb": verb, "group": group, "namespace": namespace,
            "resource": resource, "subresource": sub, "name": name}


def _path_allowed(verb: str, path: str) -> bool:
    return verb in ("get", "head") and (
        path.rstrip("/") in _NONRESOURCE_EXACT or path.startswith(_NONRESOURCE_PREFIXES)
        or path.startswith(("/api/", "/apis/")))


def allows(spec: dict) -> bool:
    """A SelfSubjectAccessReview's spec (resourceAttributes or nonResourceAttributes) asked by
    an unbound user: `kubectl auth can-i` gets the same answer the request itself would."""
    nonres = spec.get("nonResourceAttributes")
    if nonres:
        return _path_allowed(nonres.get("verb", ""), nonres.get("path", ""))
    res = spec.get("resourceAttributes") or {}
    return res.get("verb") == "create" and not res.get("subresource") and (
        (res.get("group", ""), res.get("resource", "")) in _SELF_REVIEWS)


def authorize(user: dict, method: str, path: str, query) -> None:
    """Raise 403 unless the bootstrap roles of an authenticated user allow this request."""
    a = parse(method, path, query)
    if not a["resource_request"]:
        if _path_allowed(a["verb"], path):
            return
        raise APIError(403, "Forbidden",
                       f'forbidden: User "{user["username"]}" cannot {a["verb"]} path "{path}"', {})
    if a["verb"] == "create" and (a["group"], a["resource"]) in _SELF_REVIEWS:
        return
    resource = a["resource"] + (f"/{a['subresource']}" if a["subresource"] else "")
    qualified = f"{a['resource']}.{a['group']}" if a["group"] else a["resource"]
    where = f' in the namespace "{a["namespace"]}"' if a["namespace"] else " at the cluster scope"
    subject = f'{qualified} "{a["name"]}"' if a["name"] else qualified
    details = {"kind": a["resource"]}
    if a["name"]:
        details["name"] = a["name"]
    if a["group"]:
        details["group"] = a["group"]
    raise APIError(403, "Forbidden",
                   f'{subject} is forbidden: User "{user["username"]}" cannot {a["verb"]} resource '
                   f'"{resource}" in API group "{a["group"]}"{where}', details)
