"""API errors, and the `Status` objects Kubernetes sends for them.

Every failure a client sees is a `Status` (kind Status, apiVersion v1) with an HTTP code, a
machine-readable `reason` and a human `message`; clients branch on the reason (kubectl prints
"Error from server (NotFound): pods "web" not found"). The shapes and messages below follow
k8s.io/apimachinery/pkg/api/errors so that what users read matches a real cluster.

`FieldError` mirrors k8s.io/apimachinery/pkg/util/validation/field: a path such as
`spec.containers[0].image` plus a type; a 422 Invalid lists them as `details.causes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class APIError(Exception):
    """An error the client should see as a Status. Base error of the apiserver package."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict:
        s: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                             "status": "Failure", "message": self.message, "reason": self.reason}
        if self.details is not None:  # `details: {}` is meaningful: kubectl reads fields of it
            s["details"] = self.details
        s["code"] = self.code
        return s


def _details(resource: str, group: str, name: str | None) -> dict:
    d: dict[str, Any] = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    d["kind"] = resource
    return d


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> APIError:
    return APIError(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found',
                    _details(resource, group, name))


def already_exists(resource: str, group: str, name: str) -> APIError:
    return APIError(409, "AlreadyExists", f'{_qualified(resource, group)} "{name}" already exists',
                    _details(resource, group, name))


def conflict(resource: str, group: str, name: str, why: str = "the object has been modified; "
             "please apply your changes to the latest version and try again") -> APIError:
    return APIError(409, "Conflict",
                    f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
                    _details(resource, group, name))


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def forbidden(resource: str, group: str, name: str, why: str) -> APIError:
    return APIError(403, "Forbidden",
                    f'{_qualified(resource, group)} "{name}" is forbidden: {why}',
                    _details(resource, group, name))


def not_found_path() -> APIError:
    """A path that names nothing we serve (unknown group, resource or subresource). Upstream's
    NotFoundHandler sends an empty but present `details`; `kubectl debug` dereferences it."""
    return APIError(404, "NotFound", "the server could not find the requested resource", {})


def gone(message: str) -> APIError:
    return APIError(410, "Expired", message)


def method_not_allowed(message: str = "the server does not allow this method on the requested "
                       "resource") -> APIError:
    return APIError(405, "MethodNotAllowed", message, {})  # go-restful's: empty details


def not_acceptable(message: str) -> APIError:
    return APIError(406, "NotAcceptable", message)


def unsupported_media_type(content_type: str, custom: bool = False) -> APIError:
    if custom:  # custom resources take no strategic merge patch (upstream's crdHandler list)
        return APIError(415, "UnsupportedMediaType",
                        f'the body of the request was in an unknown format - accepted media types '
                        f'include: application/json-patch+json, application/merge-patch+json, '
                        f'application/apply-patch+yaml')
    return APIError(415, "UnsupportedMediaType",
                    f'the body of the request was in an unknown format - accepted media types '
                    f'include: application/json, application/yaml, application/json-patch+json, '
                    f'application/merge-patch+json, application/strategic-merge-patch+json '
                    f'(got "{content_type}")')


def unauthorized() -> APIError:
    return APIError(401, "Unauthorized", "Unauthorized")


def internal(message: str) -> APIError:
    return APIError(500, "InternalError", f"Internal error occurred: {message}")


@dataclass(frozen=True)
class FieldError:
    """One problem at one field path; `type` is a k8s field.ErrorType reason."""

    type: str  # FieldValueRequired | FieldValueInvalid | FieldValueNotSupported | ...
    field: str
    detail: str = ""
    value: Any = None
    has_value: bool = False

    def text(self) -> str:
        label = {"FieldValueRequired": "Required value",
                 "FieldValueInvalid": "Invalid value",
                 "FieldValueNotSupported": "Unsupported value",
                 "FieldValueDuplicate": "Duplicate value",
                 "FieldValueForbidden": "Forbidden",
                 "FieldValueNotFound": "Not found",
                 "FieldValueTooLong": "Too long",
                 "FieldValueTooMany": "Too many",
                 "FieldValueTypeInvalid": "Invalid value"}.get(self.type, "Invalid value")
        parts = [label]
        if self.has_value:
            parts.append(_render(self.value))
        if self.detail:
            parts.append(self.detail)
        return ": ".join(parts)


def _render(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def required(path: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", path, detail)


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", path, detail, value, True)


def not_supported(path: str, value: Any, allowed: list[str]) -> FieldError:
    return FieldError("FieldValueNotSupported", path,
                      "supported values: " + ", ".join(f'"{a}"' for a in allowed), value, True)


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError("FieldValueDuplicate", path, "", value, True)


def forbidden_field(path: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", path, detail)


def invalid_object(kind: str, group: str, name: str, errors: list[FieldError]) -> APIError:
    """422 Invalid, worded like apierrors.NewInvalid."""
    texts = [f"{e.field}: {e.text()}" for e in errors]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    qualified = f"{kind}.{group}" if group else kind
    details = {"name": name, "group": group, "kind": kind,
               "causes": [{"reason": e.type, "message": e.text(), "field": e.field} for e in errors]}
    if not group:
        del details["group"]
    return APIError(422, "Invalid", f'{qualified} "{name}" is invalid: {joined}', details)
