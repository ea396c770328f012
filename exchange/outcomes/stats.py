"""Conversion counts that routing and scoring learn from (the ``conversion_stats`` table).

A subject is who or what converted: an agent, a team, a buyer's campaign, or a supplier source
of a vertical; a segment is the kind of lead it counts under (``lead_owners.segment``), with
``ANY_SEGMENT`` holding every lead of the subject. A trial is a lead that reached a final
outcome (won, lost, bad lead); a success is a won one, and its value is summed.

Counts only ever grow, by one upsert per (subject, segment) that adds to what is there, so two
reports counted at once on PostgreSQL or SQLite both land.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.store.db import dialect_insert
from exchange.store.tables import conversion_stats

ANY_SEGMENT = "*"  # every lead of a subject, whatever its segment
SUBJECT_MAX_CHARS = 200  # the table's column; a longer source is cut (its vertical stays)


class Counts(msgspec.Struct, frozen=True):
    trials: int = 0
    successes: int = 0
    value_minor: int = 0


def agent_subject(agent_id: uuid.UUID | str) -> str:
    return f"agent:{agent_id}"


def team_subject(team_id: uuid.UUID | str) -> str:
    return f"team:{team_id}"


def campaign_subject(campaign_id: uuid.UUID | str) -> str:
    return f"campaign:{campaign_id}"


def source_subject(vertical_id: uuid.UUID | str, source: str | None) -> str:
    """A supplier source of a vertical; leads without a source share ``source:<vertical>:``."""
    return f"source:{vertical_id}:{source or ''}"[:SUBJECT_MAX_CHARS]


def segment_of(segment: str | None) -> str:
    return segment or ANY_SEGMENT


def count_for(won: bool, value_minor: int | None) -> Counts:
    """What one final outcome adds: a trial, and a success with its value when won."""
    return Counts(trials=1, successes=int(won), value_minor=(value_minor or 0) if won else 0)


async def add(
    conn: AsyncConnection,
    keys: Iterable[tuple[str, str]],
    counts: Counts,
    now: dt.datetime,
) -> None:
    """Add ``counts`` to every (subject, segment) in ``keys`` (each once)."""
    c = conversion_stats.c
    for subject, segment in dict.fromkeys(keys):
        insert = dialect_insert(conn, conversion_stats).values(
            subject=subject, segment=segment, trials=counts.trials,
            successes=counts.successes, value_minor=counts.value_minor, updated_at=now,
        )  # fmt: skip
        await conn.execute(
            insert.on_conflict_do_update(
                index_elements=[c.subject, c.segment],
                set_={
                    "trials": c.trials + insert.excluded.trials,
                    "successes": c.successes + insert.excluded.successes,
                    "value_minor": c.value_minor + insert.excluded.value_minor,
                    "updated_at": insert.excluded.updated_at,
                },
            )
        )


async def read(
    conn: AsyncConnection, subjects: Iterable[str], segments: Iterable[str]
) -> dict[tuple[str, str], Counts]:
    """The counts of every (subject, segment) pair asked for that has any; a pair missing from
    the answer has none yet (``Counts()``)."""
    subjects, segments = list(dict.fromkeys(subjects)), list(dict.fromkeys(segments))
    if not subjects or not segments:
        return {}
    c = conversion_stats.c
    rows = await conn.execute(
        sa.select(c.subject, c.segment, c.trials, c.successes, c.value_minor).where(
            c.subject.in_(subjects), c.segment.in_(segments)
        )
    )
    return {
        (r.subject, r.segment): Counts(r.trials, r.successes, r.value_minor) for r in rows
    }
