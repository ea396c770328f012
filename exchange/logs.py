"""Structured logs: one JSON object per line in production, readable lines on a terminal.

Extra fields given with ``extra={...}`` are kept. Keys that could carry secrets or PII are
redacted before a record is written, whoever logged it.

Every record logged while serving a request carries its ``request_id``; inside a worker, the
``request_id`` of the request that enqueued the message (or the sweep that did), its
``message_id`` and ``actor``. They come from the context variables below (set by
``exchange.request_ids`` and ``exchange.worker.request_ids``) through ``ContextFilter``.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import sys
from typing import Any

import msgspec

from exchange.settings import Settings

REDACTED = "[redacted]"
SENSITIVE_KEYS = frozenset(
    {"authorization", "x-api-key", "api_key", "key", "secret", "password", "token", "pii",
     "phone", "email", "first_name", "last_name", "address"}
)  # fmt: skip
QUIET_LOGGERS = ("httpx", "alembic.runtime.plugins", "aiosqlite")
# Attributes every record has, or that formatters and servers add: not "extras" to print.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "color_message", "taskName",
}  # fmt: skip
_encode = msgspec.json.Encoder(enc_hook=str).encode

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
message_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("message_id", default=None)
actor: contextvars.ContextVar[str | None] = contextvars.ContextVar("actor", default=None)
_CONTEXT = (("request_id", request_id), ("message_id", message_id), ("actor", actor))


class ContextFilter(logging.Filter):
    """Copy the request and message ids of the running context onto each record (never
    overwriting a field the caller gave); records outside any request or message get none."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _CONTEXT:
            value = var.get()
            if value is not None and not hasattr(record, name):
                setattr(record, name, value)
        return True


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: REDACTED if str(k).lower() in SENSITIVE_KEYS else redact(v) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(redact(_extras(record)))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _encode(entry).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = redact(_extras(record))
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return line


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)-5s %(name)s: %(message)s"))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for name in QUIET_LOGGERS:  # chatty at INFO about things no operator acts on
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
