"""The one error shape every 4xx and 5xx uses.

    {"error": {"code": "validation_failed", "message": "...",
               "fields": [{"path": "fields.phone", "reason": "not a phone number"}]}}

``code`` is a stable machine string; ``message`` is for people; ``fields`` names every failing
input with its path and reason; ``request_id`` is the request's id (also in the ``X-Request-Id``
response header), to quote when asking about it.
"""

from __future__ import annotations

from typing import Any

import msgspec


class FieldProblem(msgspec.Struct, frozen=True):
    path: str
    reason: str


class ErrorBody(msgspec.Struct, omit_defaults=True):
    code: str
    message: str
    fields: list[FieldProblem] | None = None
    details: dict[str, Any] | None = None
    request_id: str | None = None


class ErrorResponse(msgspec.Struct):
    error: ErrorBody


class ApiError(Exception):
    """Raised anywhere below the controllers; rendered as ``ErrorResponse``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: list[FieldProblem] | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(code=code, message=message, fields=fields, details=details)
        self.headers = headers or {}


def validation_error(problems: list[Any], *, message: str | None = None) -> ApiError:
    fields = [FieldProblem(p.path, p.reason) for p in problems]
    count = len(fields)
    text = message or f"{count} field{'s' if count != 1 else ''} failed validation"
    return ApiError(422, "validation_failed", text, fields=fields)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def forbidden(message: str = "this key may not access that resource") -> ApiError:
    return ApiError(403, "forbidden", message)
