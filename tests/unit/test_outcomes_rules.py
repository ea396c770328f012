"""What a report may carry, checked without a database: bounds on decode (OutcomeIn) and the
rules that depend on its kind and its lead (``service.problems``)."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
import pytest

from exchange.outcomes import stats
from exchange.outcomes.messages import (
    REASON_MAX_CHARS,
    VALUE_MINOR_MAX,
    OutcomeIn,
    OutcomeKind,
    ReporterKind,
)
from exchange.outcomes.service import (
    OCCURRED_MAX_AGE_DAYS,
    OCCURRED_SKEW_S,
    Reporter,
    problems,
    stat_keys,
)

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
CREATED = NOW - dt.timedelta(days=2)


def decode(**body) -> OutcomeIn:
    return msgspec.json.decode(msgspec.json.encode(body), type=OutcomeIn)


def paths(data: OutcomeIn, currency: str = "USD") -> dict[str, str]:
    return {p.path: p.reason for p in problems(data, currency=currency, not_before=CREATED, now=NOW)}


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "sold"},
        {"kind": "won", "value_minor": -1},
        {"kind": "won", "value_minor": VALUE_MINOR_MAX + 1},
        {"kind": "won", "value_minor": 1.5},
        {"kind": "won", "value_minor": 100, "currency": "usd"},
        {"kind": "lost", "reason": ""},
        {"kind": "lost", "reason": "x" * (REASON_MAX_CHARS + 1)},
        {"kind": "won", "colour": "red"},
        {"kind": "contacted", "occurred_at": "2026-11-24T11:00:00"},  # no offset
        {"value_minor": 100},
    ],
)
def test_out_of_bounds_reports_do_not_decode(body):
    with pytest.raises(msgspec.ValidationError):
        decode(**body)


def test_the_bounds_themselves_decode():
    assert decode(kind="won", value_minor=VALUE_MINOR_MAX, currency="USD").value_minor == VALUE_MINOR_MAX
    assert decode(kind="lost", reason="x" * REASON_MAX_CHARS).reason
    assert decode(kind="won", value_minor=0).value_minor == 0


def test_a_well_formed_report_of_each_kind_fits():
    assert paths(decode(kind="contacted")) == {}
    assert paths(decode(kind="qualified", occurred_at=(NOW - dt.timedelta(hours=1)).isoformat())) == {}
    assert paths(decode(kind="won")) == {}  # a close without a value
    assert paths(decode(kind="won", value_minor=125_000)) == {}  # the vertical's currency by default
    assert paths(decode(kind="won", value_minor=125_000, currency="USD")) == {}
    assert paths(decode(kind="lost", reason="went with a competitor")) == {}
    assert paths(decode(kind="bad_lead", reason="disconnected number")) == {}
    assert paths(decode(kind="lost")) == {}  # a reason is welcome, not required


def test_values_and_reasons_only_on_their_kinds():
    assert paths(decode(kind="lost", value_minor=5)) == {"value_minor": "only a won outcome has a value"}
    assert paths(decode(kind="contacted", currency="USD")) == {"currency": "only a won outcome has a currency"}
    assert paths(decode(kind="won", reason="great")) == {"reason": "only lost and bad_lead outcomes have a reason"}
    assert paths(decode(kind="appointment", reason="x")).keys() == {"reason"}
    assert paths(decode(kind="won", currency="USD")) == {"currency": "give value_minor with the currency"}
    assert paths(decode(kind="won", value_minor=1, currency="EUR")) == {
        "currency": "must be the vertical's currency, USD"
    }
    both = paths(decode(kind="contacted", value_minor=1, reason="x"))
    assert both.keys() == {"value_minor", "reason"}  # every problem at once


@pytest.mark.parametrize(
    ("at", "reason"),
    [
        (NOW + dt.timedelta(seconds=OCCURRED_SKEW_S + 1), "in the future"),
        (NOW - dt.timedelta(days=OCCURRED_MAX_AGE_DAYS, seconds=1), f"more than {OCCURRED_MAX_AGE_DAYS} days ago"),
        (CREATED - dt.timedelta(seconds=OCCURRED_SKEW_S + 1), "before the lead existed"),
    ],
)
def test_when_it_happened_must_be_plausible(at, reason):
    assert paths(decode(kind="contacted", occurred_at=at.isoformat())) == {"occurred_at": reason}


def test_clock_skew_is_tolerated():
    for at in (NOW + dt.timedelta(seconds=OCCURRED_SKEW_S), CREATED - dt.timedelta(seconds=OCCURRED_SKEW_S)):
        assert paths(decode(kind="contacted", occurred_at=at.isoformat())) == {}
    other_zone = (NOW - dt.timedelta(hours=1)).astimezone(dt.timezone(dt.timedelta(hours=-5)))
    assert paths(decode(kind="contacted", occurred_at=other_zone.isoformat())) == {}


def test_every_kind_is_named_once():
    assert [k.value for k in OutcomeKind] == [
        "contacted", "qualified", "appointment", "won", "lost", "bad_lead",
    ]  # fmt: skip


# --- what a final outcome counts under --------------------------------------------------------

AGENT, TEAM, VERTICAL, CAMPAIGN = (uuid.uuid4() for _ in range(4))


def reporter(kind: ReporterKind, **extra) -> Reporter:
    return Reporter(
        kind=kind, party_id=AGENT, lead_id=uuid.uuid4(), vertical_id=VERTICAL, source="google",
        currency="USD", lead_created_at=CREATED, **extra,
    )  # fmt: skip


def test_subject_names():
    assert stats.agent_subject(AGENT) == f"agent:{AGENT}"
    assert stats.team_subject(str(TEAM)) == f"team:{TEAM}"
    assert stats.campaign_subject(CAMPAIGN) == f"campaign:{CAMPAIGN}"
    assert stats.source_subject(VERTICAL, "google") == f"source:{VERTICAL}:google"
    assert stats.source_subject(VERTICAL, None) == f"source:{VERTICAL}:"
    long = stats.source_subject(VERTICAL, "s" * 1000)
    assert len(long) == stats.SUBJECT_MAX_CHARS and long.startswith(f"source:{VERTICAL}:")


def test_an_agents_outcome_counts_for_it_its_team_and_the_source():
    keys = stat_keys(reporter(ReporterKind.AGENT, team_id=TEAM, segment="high"))
    assert keys == [
        (f"source:{VERTICAL}:google", "*"),
        (f"agent:{AGENT}", "high"), (f"agent:{AGENT}", "*"),
        (f"team:{TEAM}", "high"), (f"team:{TEAM}", "*"),
    ]  # fmt: skip
    unsegmented = stat_keys(reporter(ReporterKind.AGENT, team_id=TEAM, segment=None))
    assert (f"agent:{AGENT}", "*") in unsegmented and len(dict.fromkeys(unsegmented)) == 3


def test_a_buyers_outcome_counts_for_its_campaign_and_the_source():
    keys = stat_keys(reporter(ReporterKind.BUYER, campaign_id=CAMPAIGN))
    assert keys == [(f"source:{VERTICAL}:google", "*"), (f"campaign:{CAMPAIGN}", "*")]


def test_a_trial_and_a_success_only_when_won():
    assert stats.count_for(True, 125_000) == stats.Counts(1, 1, 125_000)
    assert stats.count_for(True, None) == stats.Counts(1, 1, 0)
    assert stats.count_for(False, 999) == stats.Counts(1, 0, 0)  # a lost lead's value is not a sale
