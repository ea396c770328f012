"""Settings, read once from the environment.

Every setting is an ``EXCHANGE_``-prefixed environment variable; ``docs/settings.md`` lists them
all. Limits carry their unit in the name (``max_body_bytes``, ``ping_timeout_ms``) so a reader
never has to guess.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, get_type_hints

import msgspec

ENV_PREFIX = "EXCHANGE_"
DEFAULT_VAR_DIR = "var"


LEAD_STUCK_AFTER_S_MIN = 120  # the longest post timeout (30 s) and slack, with room to walk


class SettingsError(ValueError):
    """A setting has a value the exchange cannot use."""


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    # Storage and broker. SQLite plus an in-process worker is the embedded default; a
    # postgresql+psycopg:// URL and a redis:// URL switch to the production engines.
    database_url: str = f"sqlite+aiosqlite:///{DEFAULT_VAR_DIR}/exchange.db"
    redis_url: str | None = None
    database_pool_size: int = 10
    database_pool_overflow: int = 10
    database_timeout_s: int = 10

    # HTTP server.
    host: str = "127.0.0.1"
    port: int = 8000
    http_workers: int = 1

    # Secret for HMAC of dedupe keys and request signatures. Generated and kept under var/
    # when unset, so the embedded default needs no setup; set it in production.
    secret_key: str = ""
    var_dir: str = DEFAULT_VAR_DIR

    # Limits on everything a client controls.
    max_body_bytes: int = 64 * 1024
    max_fields_per_lead: int = 100
    text_max_chars: int = 1_000
    consent_text_max_chars: int = 10_000
    url_max_chars: int = 2_048
    idempotency_key_max_chars: int = 255
    page_size_default: int = 50
    page_size_max: int = 500
    vertical_fields_max: int = 200

    # The auction. Per-buyer ping timeouts are set on each endpoint; the deadline bounds the
    # whole fan-out, so a supplier's ping is answered within it whatever buyers do.
    auction_deadline_ms: int = 1_500
    ping_ttl_ms: int = 120_000  # how long a supplier has to post an offered ping
    campaign_cache_ttl_ms: int = 1_000  # other processes see campaign changes within this
    key_cache_ttl_ms: int = 5_000  # a key revoked elsewhere stops working here within this
    http_connections_max: int = 200  # open connections to buyers, per process

    # Delivery to buyers: the first attempt runs in the supplier's post; transport errors are
    # retried by workers with exponential backoff, within both bounds below.
    delivery_max_attempts: int = 8
    delivery_max_age_s: int = 3_600
    delivery_backoff_min_ms: int = 2_000
    delivery_backoff_max_ms: int = 300_000
    delivery_lease_ms: int = 30_000  # an attempt holds its delivery this long before another may
    delivery_sweep_interval_s: int = 15  # how often pending deliveries past due are re-sent
    # A lead still being sold this long after its post began lost its walk (its process died):
    # the sweeper settles it. A live walk starts no post after this less the longest post
    # timeout and a slack (exchange.auction.walking), so the two never settle one lead.
    lead_stuck_after_s: int = 300

    # Calls (exchange.calls): a caller must connect within call_ttl_s of the call's bid (a
    # team's sequential ringing adds each agent's ring time); a connected call whose end is not
    # reported within call_max_s is closed unbilled, so its line is not held for ever.
    call_ttl_s: int = 60
    call_max_s: int = 14_400

    # Notifications by email (exchange.notifications): the SMTP server that relays them. An
    # empty host leaves email notifications pending (retried, then failed). The password is
    # never logged.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "exchange@localhost"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_timeout_s: int = 10

    # Lifetimes.
    idempotency_ttl_hours: int = 24
    # Days a lead's PII is kept after the lead was accepted; purge_expired then erases it (the
    # lead, its sales and the ledger stay). 0 keeps it for good.
    pii_retention_days: int = 0
    # How often each API process enqueues housekeeping (purge_expired); 0 turns it off.
    maintenance_interval_s: int = 3600
    # How often each API process asks a worker to close expired pings and free their capacity.
    ping_sweep_interval_s: int = 5
    # How often each API process asks a worker to expire team offers, drain team queues and
    # enforce the first-contact SLA (exchange.teams.sweeper.sweep); 0 turns it off.
    offer_sweep_interval_s: int = 5

    # Shutdown. On SIGTERM `exchange serve` stops accepting connections and lets requests in
    # flight finish for up to this long, then stops its maintenance timers and in-process worker
    # (which lets running actors finish for up to this long too); `exchange worker` stops
    # fetching and lets running actors finish for up to this long. Keep it below the platform's
    # kill deadline (Kubernetes terminationGracePeriodSeconds, compose stop_grace_period).
    shutdown_grace_s: int = 30
    # A worker process silent this long is dead: other workers re-queue the messages it had
    # taken and not acknowledged. Above the longest actor run (60 s), or a busy worker's
    # messages would run twice (harmless, every actor is idempotent, but wasted).
    worker_heartbeat_timeout_s: int = 90

    # Prometheus metrics: /metrics on the API; `exchange worker` serves its processes' metrics
    # on this port (bound to `host`; 0 turns it off).
    metrics_enabled: bool = True
    worker_metrics_port: int = 0

    # Logging.
    log_level: str = "INFO"
    log_json: bool = False

    # Demo data and simulated traffic for `make run`.
    demo: bool = False
    demo_leads_per_minute: int = 30

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sync_database_url(self) -> str:
        """The URL for synchronous tools (Alembic): same database, blocking driver."""
        if self.database_url.startswith("sqlite+aiosqlite"):
            return self.database_url.replace("sqlite+aiosqlite", "sqlite", 1)
        return self.database_url  # postgresql+psycopg serves both modes


def _coerce(name: str, raw: str, kind: Any) -> Any:
    text = raw.strip()
    try:
        if kind is bool:
            lowered = text.lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(f"expected true/false, got {raw!r}")
        if kind is int:
            return int(text)
        return text or None if kind == (str | None) else text
    except ValueError as exc:
        raise SettingsError(f"{ENV_PREFIX}{name.upper()}: {exc}") from exc


def load_settings(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from the environment (or ``env``), then apply ``overrides``."""
    source = os.environ if env is None else env
    hints = get_type_hints(Settings)
    values: dict[str, Any] = {}
    for name in Settings.__struct_fields__:
        raw = source.get(f"{ENV_PREFIX}{name.upper()}")
        if raw is not None:
            values[name] = _coerce(name, raw, hints[name])
    values.update(overrides)
    normalized = _normalize_database_url(values.get("database_url"))
    if normalized:
        values["database_url"] = normalized
    settings = Settings(**values)
    _check(settings)
    if not settings.secret_key:
        settings = msgspec.structs.replace(settings, secret_key=_var_secret(settings.var_dir))
    return settings


def _normalize_database_url(url: str | None) -> str | None:
    """Accept the URLs people paste (postgres://, postgresql://) and pick our drivers."""
    if not url:
        return None
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


def _check(settings: Settings) -> None:
    url = settings.database_url
    if not (url.startswith("sqlite+aiosqlite://") or url.startswith("postgresql+psycopg://")):
        raise SettingsError(
            f"{ENV_PREFIX}DATABASE_URL must be sqlite:///path or postgresql://..., got {url!r}"
        )
    for name in ("max_body_bytes", "page_size_max", "page_size_default", "text_max_chars",
                 "worker_heartbeat_timeout_s", "shutdown_grace_s", "call_ttl_s", "call_max_s"):  # fmt: skip
        if getattr(settings, name) <= 0:
            raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be positive")
    if settings.lead_stuck_after_s < LEAD_STUCK_AFTER_S_MIN:
        raise SettingsError(
            f"{ENV_PREFIX}LEAD_STUCK_AFTER_S must be at least {LEAD_STUCK_AFTER_S_MIN}: a walk "
            "needs room for its posts (each up to 30 s) before the sweeper may take its lead"
        )
    if settings.pii_retention_days < 0:
        raise SettingsError(f"{ENV_PREFIX}PII_RETENTION_DAYS must be 0 (keep) or more")
    if settings.page_size_default > settings.page_size_max:
        raise SettingsError(f"{ENV_PREFIX}PAGE_SIZE_DEFAULT exceeds {ENV_PREFIX}PAGE_SIZE_MAX")


def _var_secret(var_dir: str) -> str:
    """A secret generated once and kept in ``var/secret_key`` (mode 0600)."""
    path = Path(var_dir) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    return secret
