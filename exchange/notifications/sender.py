"""Sending the outbox: email through SMTP, the webhook through aiohttp, signed.

Each attempt first takes its row (``claim``: attempts + 1 and ``next_attempt_at`` pushed out by
``LEASE_S``, so a second copy of the message or the sweeper does not send it at the same time),
then sends, then records the answer: ``sent``; or a retry at an exponential backoff; or, after
``MAX_ATTEMPTS``, ``failed`` with the last error (``GET /v1/teams/{id}/notifications``). The
retries are ours, not Dramatiq's (the actor never raises for a channel's failure).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import smtplib
import time
import uuid
from email.message import EmailMessage
from typing import Any

import aiohttp
import msgspec
import sqlalchemy as sa

from exchange import metrics
from exchange.delivery import signing
from exchange.delivery.outbox import backoff_ms, redact
from exchange.notifications.outbox import FAILED, PENDING, SENT, enqueue
from exchange.settings import Settings
from exchange.store.db import Database
from exchange.store.tables import notifications, team_notifications

MAX_ATTEMPTS = 6
BACKOFF_MIN_MS = 5_000
BACKOFF_MAX_MS = 15 * 60_000
LEASE_S = 120  # above the SMTP and webhook timeouts: an attempt in flight is never doubled
WEBHOOK_TIMEOUT_S = 10.0
ERROR_MAX_CHARS = 500
SWEEP_BATCH = 200


class ChannelError(Exception):
    """The channel refused or could not be reached: try again later."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _claim(db: Database, notification_id: uuid.UUID, now: dt.datetime) -> Any:
    c = notifications.c
    async with db.write() as conn:
        return (
            await conn.execute(
                notifications.update()
                .where(c.id == notification_id, c.status == PENDING, c.next_attempt_at <= now)
                .values(attempts=c.attempts + 1, next_attempt_at=now + dt.timedelta(seconds=LEASE_S))
                .returning(*notifications.c)
            )
        ).first()


async def _secret(db: Database, team_id: uuid.UUID) -> str | None:
    async with db.read() as conn:
        raw = (
            await conn.execute(
                sa.select(team_notifications.c.config).where(team_notifications.c.team_id == team_id)
            )
        ).scalar_one_or_none()
    return ((raw or {}).get("webhook") or {}).get("secret")


def _send_mail(settings: Settings, to: str, subject: str, body: str) -> None:
    """Blocking (smtplib): run in a thread. The password is never logged or kept in an error."""
    if not settings.smtp_host:
        raise ChannelError("no SMTP server configured (EXCHANGE_SMTP_HOST)")
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = settings.smtp_from, to, subject
    mail.set_content(body)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_s) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password)
            smtp.send_message(mail)
    except (OSError, smtplib.SMTPException) as exc:
        raise ChannelError(f"smtp: {type(exc).__name__}: {exc}") from None


async def _post_webhook(url: str, secret: str | None, notification_id: uuid.UUID, payload: Any) -> None:
    body = msgspec.json.encode(payload)
    ts = int(time.time())
    headers = {"Content-Type": "application/json",
               signing.TIMESTAMP_HEADER: str(ts),
               signing.DELIVERY_ID_HEADER: str(notification_id)}  # fmt: skip
    if secret:
        headers[signing.SIGNATURE_HEADER] = signing.sign(secret, ts, body)
    timeout = aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S)
    try:
        async with aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()) as http:
            async with http.post(url, data=body, headers=headers, allow_redirects=False) as response:
                if not 200 <= response.status < 300:
                    text = (await response.content.read(300)).decode(errors="replace")
                    raise ChannelError(f"webhook answered {response.status}: {text}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ChannelError(f"webhook: {type(exc).__name__}: {exc}") from None


async def send_one(db: Database, settings: Settings, notification_id: uuid.UUID,
                   now: dt.datetime | None = None) -> str | None:
    """One attempt at a pending, due notification; its status after it (None: not ours now)."""
    now = now or utcnow()
    row = await _claim(db, notification_id, now)
    if row is None:
        return None
    try:
        if row.channel == "email":
            p = row.payload
            await asyncio.to_thread(_send_mail, settings, row.address, p["subject"], p["body"])
        else:
            secret = await _secret(db, row.team_id)
            await _post_webhook(row.address, secret, row.id, row.payload)
    except ChannelError as exc:
        return await _failed(db, row, str(exc), now)
    async with db.write() as conn:
        await conn.execute(
            notifications.update()
            .where(notifications.c.id == row.id, notifications.c.status == PENDING)
            .values(status=SENT, sent_at=utcnow(), next_attempt_at=None, last_error=None)
        )
    metrics.NOTIFICATIONS.labels(row.channel, SENT).inc()
    return SENT


async def _failed(db: Database, row: Any, error: str, now: dt.datetime) -> str:
    error = redact(error)[:ERROR_MAX_CHARS]
    last = row.attempts >= MAX_ATTEMPTS
    at = None if last else now + dt.timedelta(
        milliseconds=backoff_ms(row.attempts, min_ms=BACKOFF_MIN_MS, max_ms=BACKOFF_MAX_MS)
    )
    async with db.write() as conn:
        await conn.execute(
            notifications.update()
            .where(notifications.c.id == row.id, notifications.c.status == PENDING)
            .values(status=FAILED if last else PENDING, next_attempt_at=at, last_error=error)
        )
    metrics.NOTIFICATIONS.labels(row.channel, FAILED if last else "retry").inc()
    if at is not None:
        enqueue([str(row.id)], delay_ms=max(1, int((at - utcnow()).total_seconds() * 1000)))
    return FAILED if last else PENDING


async def send(db: Database, settings: Settings, ids: list[str]) -> dict[str, str | None]:
    return {i: await send_one(db, settings, uuid.UUID(i)) for i in ids}


async def due(db: Database, now: dt.datetime, limit: int = SWEEP_BATCH) -> list[uuid.UUID]:
    c = notifications.c
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(c.id).where(c.status == PENDING, c.next_attempt_at <= now)
            .order_by(c.next_attempt_at).limit(limit)
        )
        return [r.id for r in rows]


async def sweep(db: Database, settings: Settings, now: dt.datetime | None = None) -> int:
    """Send what is due: messages lost, workers that died, retries whose message was lost."""
    now = now or utcnow()
    ids = await due(db, now)
    for notification_id in ids:
        await send_one(db, settings, notification_id, now)
    return len(ids)
