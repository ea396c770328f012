"""The names of the ways a lead arrives, as routing rules, lead listings and reports call them.

``leads.channel`` stores null for the native ping/post API and the adapter's name otherwise;
everywhere a channel is shown or matched, the native API is called ``api``.
"""

from __future__ import annotations

import enum

import sqlalchemy as sa


class LeadChannel(str, enum.Enum):
    API = "api"  # the native ping/post API (stored as null in leads.channel)
    FORM = "form"
    GOOGLE_ADS = "google_ads"
    META = "meta"
    CSV = "csv"
    EMAIL = "email"
    CALL = "call"  # phone calls (exchange.calls)


API_CHANNEL = LeadChannel.API.value


def channel_name(stored: str | None) -> str:
    """The channel a stored ``leads.channel`` value is called by."""
    return stored or API_CHANNEL


def stored_channel(name: str) -> str | None:
    """What ``leads.channel`` holds for a channel's name (null for the native API)."""
    return None if name == API_CHANNEL else name


def channel_is(column: sa.ColumnElement, name: str) -> sa.ColumnElement[bool]:
    """``column`` (a ``leads.channel``) holds the channel of this name."""
    stored = stored_channel(name)
    return column.is_(None) if stored is None else column == stored


def channel_of(column: sa.ColumnElement) -> sa.ColumnElement[str]:
    """A ``leads.channel`` column as the channel's name (``api`` for null), in SQL."""
    return sa.func.coalesce(column, sql_constant(API_CHANNEL))


def sql_constant(value: str) -> sa.ColumnElement[str]:
    """A constant written into the SQL, not bound: PostgreSQL takes a GROUP BY of an expression
    as the selected one only when both read the same (two bound parameters do not)."""
    return sa.literal(value, sa.String, literal_execute=True)
