"""Typed API errors: a failed request becomes the exception named after the Status reason.

The server answers every failure with a `Status` object (kind Status) carrying `code`, `reason`
and `message`. Callers branch on the type — `except Conflict:` re-read and retry, `except NotFound:`
the object is gone, `except Expired:` the watch fell behind and must re-list.
"""

from __future__ import annotations


class ApiError(Exception):
    """Base error of apiclient: a request the API server refused (or could not be reached)."""

    def __init__(self, code: int, reason: str, message: str, status: dict | None = None):
        super().__init__(f"{code} {reason}: {message}")
        self.code, self.reason, self.message = code, reason, message
        self.status = status or {}

    @property
    def causes(self) -> list[dict]:
        """For Invalid (422): [{"field": "spec.containers[0].image", "reason": ..., "message": ...}]."""
        return (self.status.get("details") or {}).get("causes") or []


class BadRequest(ApiError): ...
class Unauthorized(ApiError): ...
class Forbidden(ApiError): ...
class NotFound(ApiError): ...
class AlreadyExists(ApiError): ...
class Conflict(ApiError): ...
class Expired(ApiError):
    """410 Gone: the resourceVersion is older than the server keeps; list again."""
class Invalid(ApiError): ...
class ServerError(ApiError): ...
class Unreachable(ApiError):
    """The server could not be reached (connection refused, TLS failure, timeout)."""


_BY_REASON = {"BadRequest": BadRequest, "Unauthorized": Unauthorized, "Forbidden": Forbidden,
              "NotFound": NotFound, "AlreadyExists": AlreadyExists, "Conflict": Conflict,
              "Expired": Expired, "Gone": Expired, "Invalid": Invalid}
_BY_CODE = {400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
            410: Expired, 422: Invalid}


def from_status(code: int, status: dict | None, text: str = "") -> ApiError:
    status = status if isinstance(status, dict) and status.get("kind") == "Status" else {}
    code = status.get("code") or code
    reason = status.get("reason") or ""
    cls = _BY_REASON.get(reason) or _BY_CODE.get(code) or (ServerError if code >= 500 else ApiError)
    return cls(code, reason or cls.__name__, status.get("message") or text or "(no message)", status)
