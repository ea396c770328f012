"""A process out of database connections answers 503 with Retry-After, not a 500."""

from __future__ import annotations

from types import SimpleNamespace

import msgspec
import sqlalchemy.exc

from exchange.app import OVERLOADED_RETRY_AFTER_S, _unexpected


def _request():
    return SimpleNamespace(url=SimpleNamespace(path="/v1/leads"))


def test_pool_timeout_is_503_overloaded_with_retry_after():
    try:
        try:
            raise sqlalchemy.exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached")
        except sqlalchemy.exc.TimeoutError as inner:
            raise RuntimeError("while reading the ping") from inner
    except RuntimeError as exc:
        response = _unexpected(_request(), exc)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(OVERLOADED_RETRY_AFTER_S)
    body = msgspec.to_builtins(response.content)
    assert body["error"]["code"] == "overloaded"


def test_any_other_unexpected_error_is_500():
    response = _unexpected(_request(), ValueError("boom"))
    assert response.status_code == 500
    assert msgspec.to_builtins(response.content)["error"]["code"] == "internal_error"
