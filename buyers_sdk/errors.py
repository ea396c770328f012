"""Errors: every non-2xx answer of the exchange raises a typed ``ApiError``.

The exchange answers every error in one shape::

    {"error": {"code": "validation_failed", "message": "...",
               "fields": [{"path": "filters[0].field", "reason": "unknown field 'colour'"}]}}

``code`` is a stable machine string, ``message`` is for people, ``fields`` names each failing
input with its path, ``request_id`` is the request's id (the ``X-Request-Id`` header too):
quote it to the exchange's support (``ApiError.request_id``). Catch the subclass you can
handle (``NotFound``, ``Conflict``...), or ``ApiError`` for all of them; a failure to reach the
exchange at all is ``TransportError``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from buyers_sdk.models import ErrorResponse, FieldProblem


class ExchangeError(Exception):
    """Base of everything this SDK raises."""


class TransportError(ExchangeError):
    """The exchange could not be reached (connection refused, timeout, TLS...)."""


class ApiError(ExchangeError):
    """The exchange answered with an error status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: list[FieldProblem] | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = list(fields or [])
        self.details = details or {}
        self.headers = headers or {}
        # The request's id, to quote when asking the exchange about this error: from the body,
        # else the X-Request-Id header (None when neither says).
        self.request_id = request_id or self.headers.get("x-request-id")

    @property
    def paths(self) -> list[str]:
        """The failing inputs' paths, e.g. ``["timezone", "filters[0].field"]``."""
        return [f.path for f in self.fields]

    def reason_for(self, path: str) -> str | None:
        """Why ``path`` failed, or None when it did not."""
        return next((f.reason for f in self.fields if f.path == path), None)


class BadRequest(ApiError):
    """400: the request itself was malformed."""


class Unauthorized(ApiError):
    """401: no API key, or an unknown or revoked one."""


class Forbidden(ApiError):
    """403: this key may not do that (e.g. another buyer's campaign)."""


class NotFound(ApiError):
    """404: no such campaign, return, lead..."""


class Conflict(ApiError):
    """409: the request clashes with the current state (e.g. a lead already returned)."""


class ValidationFailed(ApiError):
    """422: inputs were refused; ``fields`` lists each one with its path and reason."""


class RateLimited(ApiError):
    """429: too many requests; wait ``retry_after_s`` seconds (None when not said)."""

    def __init__(self, *args: Any, retry_after_s: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after_s = retry_after_s


class ServerError(ApiError):
    """5xx: the exchange failed; retrying later is safe for reads."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: ValidationFailed,
    429: RateLimited,
}


def _retry_after(headers: dict[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from the exchange; treat as unknown


def error_from_response(status: int, headers: dict[str, str], content: bytes) -> ApiError:
    """The ``ApiError`` subclass for an error answer (headers with lower-case names)."""
    try:
        body = msgspec.json.decode(content, type=ErrorResponse).error
        code, message, fields, details = body.code, body.message, body.fields, body.details
        request_id = body.request_id
    except (msgspec.DecodeError, msgspec.ValidationError):
        text = content.decode("utf-8", errors="replace").strip()[:500]
        code, message, fields, details = f"http_{status}", text or f"HTTP {status}", None, None
        request_id = None
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    kwargs: dict[str, Any] = {
        "fields": fields, "details": details, "headers": headers, "request_id": request_id,
    }  # fmt: skip
    if cls is RateLimited:
        kwargs["retry_after_s"] = _retry_after(headers)
    return cls(status, code, message, **kwargs)
