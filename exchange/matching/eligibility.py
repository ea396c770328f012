"""Is a campaign eligible for a lead? One decision, one reason.

``evaluate`` runs the checks below in this fixed order and stops at the first that fails, so an
excluded campaign always has exactly one reason (codes in ``reasons``):

1. ``campaign_paused``        the campaign is not active
2. ``schedule_closed``        outside its schedule (``schedule.is_open``)
3. ``filtered:<field>``       the first failing filter, in ``filters.evaluation_order``
4. ``duplicate``              the buyer already bought this person
5. ``cap_reached:<window>`` / ``budget_reached:<window>``   the first cap one more lead breaks
6. ``insufficient_balance``   the buyer cannot pay

The cheap, lead-independent checks come first so a trace explains a paused or closed campaign
without looking at the lead; money and counters come last because they change under load.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import msgspec

from exchange import reasons
from exchange.intake.fields import FieldSpec
from exchange.matching.caps import (
    CAPS_MAX,
    Cap,
    CapWindow,
    Usage,
    breach_details,
    cap_breach,
    validate_caps,
)
from exchange.matching.filters import (
    FILTERS_MAX,
    Expression,
    Filter,
    filter_field,
    first_failing,
    validate_filters,
)
from exchange.matching.localtime import require_aware, timezone_problem
from exchange.matching.schedule import (
    Schedule,
    is_open,
    next_open,
    open_interval,
    validate_schedule,
)

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
TIER_MAX = 10
MAX_SELLS_MAX = 10  # the most buyers one shared lead can go to


class PriceMode(str, enum.Enum):
    FIXED = "fixed"  # bids fixed_price_minor without a ping
    LIVE = "live"  # pinged; bids whatever the buyer answers (at least floor_minor)


class CampaignRules(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    """What eligibility and the auction need to know about a campaign; nothing about delivery."""

    campaign_id: Id
    buyer_id: Id
    vertical: Id
    timezone: str  # IANA; cap windows reset on this wall clock; age filters default to it
    active: bool = True
    filters: Annotated[tuple[Filter, ...], msgspec.Meta(max_length=FILTERS_MAX)] = ()
    schedule: Schedule | None = None  # None: always open
    caps: Annotated[tuple[Cap, ...], msgspec.Meta(max_length=CAPS_MAX)] = ()
    price_mode: PriceMode = PriceMode.FIXED
    fixed_price_minor: Annotated[int, msgspec.Meta(ge=0)] | None = None
    floor_minor: Annotated[int, msgspec.Meta(ge=0)] = 0  # live bids below it are dropped
    # 1: the campaign buys exclusive leads only; N > 1: it accepts a lead shared with up to N
    # buyers in all. The auction enforces it (exclusivity_conflict), not eligibility.
    max_sells: Annotated[int, msgspec.Meta(ge=1, le=MAX_SELLS_MAX)] = 1
    tier: Annotated[int, msgspec.Meta(ge=1, le=TIER_MAX)] = 1  # 1 is tried first
    # It buys calls, and only calls (exchange.calls); a lead of any other channel never sees
    # it, and it never sees them.
    calls: bool = False


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    campaign_id: str
    eligible: bool
    reason: str | None  # None exactly when eligible
    details: dict[str, Any] = {}  # the numbers behind the reason, for traces


def least_price_minor(campaign: CampaignRules) -> int:
    """The least this campaign can pay for a lead: what budgets and balances are checked with."""
    if campaign.price_mode is PriceMode.FIXED:
        return campaign.fixed_price_minor or 0
    return campaign.floor_minor


def evaluate(
    campaign: CampaignRules,
    lead_fields: Mapping[str, Any],
    now: dt.datetime,
    usage: Usage,
    buyer_can_pay: bool,
    already_bought: bool,
) -> Decision:
    """The decision for one campaign and one lead (order in the module docstring)."""
    now = require_aware(now)

    def excluded(reason: str, **details: Any) -> Decision:
        return _excluded(campaign, reason, details)

    early = lead_independent_exclusion(campaign, now)
    if early is not None:
        return early
    failed = first_failing(campaign.filters, lead_fields, now, tz=campaign.timezone)
    if failed is not None:
        return filtered_decision(campaign, failed, lead_fields)
    if already_bought:
        return excluded(reasons.DUPLICATE)
    price = least_price_minor(campaign)
    breach = cap_breach(caps_now(campaign, now), usage, price, campaign.timezone, now)
    if breach is not None:
        return excluded(breach.reason, **breach_details(breach))
    if not buyer_can_pay:
        return excluded(reasons.INSUFFICIENT_BALANCE, price_minor=price)
    return Decision(
        campaign_id=campaign.campaign_id,
        eligible=True,
        reason=None,
        details={
            "price_mode": campaign.price_mode.value,
            "price_minor": price,
            "tier": campaign.tier,
        },
    )


def caps_now(campaign: CampaignRules, now: dt.datetime) -> tuple[Cap, ...]:
    """The caps that hold at ``now``: a call campaign's schedule may say how many calls it takes
    at once in the interval open now (its lines staffed then), over its concurrent cap."""
    if not campaign.calls or campaign.schedule is None:
        return campaign.caps
    interval = open_interval(campaign.schedule, now)
    if interval is None or interval.max_concurrent is None:
        return campaign.caps
    lines = Cap(window=CapWindow.CONCURRENT, max_count=interval.max_concurrent)
    return (*(c for c in campaign.caps if c.window is not CapWindow.CONCURRENT), lines)


def lead_independent_exclusion(campaign: CampaignRules, now: dt.datetime) -> Decision | None:
    """Checks 1 and 2 (paused, schedule): they need no lead, so the index reuses them."""
    if not campaign.active:
        return _excluded(campaign, reasons.CAMPAIGN_PAUSED, {})
    if not is_open(campaign.schedule, now):
        reopens = next_open(campaign.schedule, now)
        details = {"next_open": reopens.isoformat() if reopens else None}
        return _excluded(campaign, reasons.SCHEDULE_CLOSED, details)
    return None


def filtered_decision(
    campaign: CampaignRules, failed: Filter, lead_fields: Mapping[str, Any]
) -> Decision:
    reason = reasons.filtered(filter_field(failed))
    return _excluded(campaign, reason, filter_details(failed, lead_fields))


def _excluded(campaign: CampaignRules, reason: str, details: dict[str, Any]) -> Decision:
    return Decision(
        campaign_id=campaign.campaign_id, eligible=False, reason=reason, details=details
    )


def filter_details(failed: Filter, lead_fields: Mapping[str, Any]) -> dict[str, Any]:
    """What a trace shows for a failed filter. Lead values here are non-PII (ping fields)."""
    if isinstance(failed, Expression):
        return {"filter": "expression", "expression": failed.expression}
    return {"filter": type(failed).__struct_config__.tag, "value": lead_fields.get(failed.field)}


def validate_campaign(
    campaign: CampaignRules, vertical_fields: Sequence[FieldSpec]
) -> list[tuple[str, str]]:
    """Problems msgspec's types cannot express, as (path, reason)."""
    problems: list[tuple[str, str]] = []
    if problem := timezone_problem(campaign.timezone):
        problems.append(("timezone", problem))
    if campaign.price_mode is PriceMode.FIXED and campaign.fixed_price_minor is None:
        problems.append(("fixed_price_minor", "a fixed-price campaign needs fixed_price_minor"))
    if campaign.price_mode is PriceMode.LIVE and campaign.fixed_price_minor is not None:
        problems.append(("fixed_price_minor", "a live-bid campaign takes no fixed price"))
    if campaign.schedule is not None:
        problems += validate_schedule(campaign.schedule)
        if not campaign.calls:
            problems += [
                (f"schedule.days.{day}[{i}].max_concurrent", "calls at once: for call campaigns only")
                for day, intervals in campaign.schedule.days.items()
                for i, interval in enumerate(intervals)
                if interval.max_concurrent is not None
            ]
    problems += validate_filters(campaign.filters, vertical_fields)
    problems += validate_caps(campaign.caps, calls=campaign.calls)
    if campaign.calls and campaign.max_sells != 1:
        problems.append(("max_sells", "a call goes to one buyer: call campaigns buy exclusively"))
    return problems

