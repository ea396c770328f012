"""Conversion weights: a team's campaign ranked by how well its team converts this kind of lead.

A team (an internal buyer) may set ``rank_by_conversion`` on its campaigns. When such campaigns
compete for a lead, each bid's ranking value (never its price) is multiplied by its campaign's
smoothed conversion in the lead's segment relative to the base rate of the vertical's
campaigns ranked by conversion in that segment:

- segment: ``priority=<band>`` when the lead has a priority band, else ``*`` (every lead); the
  same string team routing counts an owner under without a ``segment_field``;
- the campaign's rate: the posterior mean of a Beta prior centred on the base rate worth
  ``PRIOR_STRENGTH_DEFAULT`` leads (``exchange.teams.performance``), so a campaign with 2 wins
  in 3 leads does not jump ahead of one with 40 in 100; with no outcomes anywhere every weight is
  neutral;
- weight = rate / base, in basis points (10000 = x1), clamped to the ranking's bounds (x0.1 to
  x10) and never below the campaign's ``conversion_floor_pct`` (default 50) % of neutral: the
  **fairness floor**, set by the operator or the team per campaign. A team
  that converts poorly still ranks at half its value at worst, so it keeps getting leads
  (and outcomes to prove itself with) instead of being starved by one good streak elsewhere.

Pure: counts in, weights out; rounded once to integer basis points, so ranking stays integer.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from exchange.auction.margin import BPS_PER_WHOLE
from exchange.auction.ranking import MAX_WEIGHT_BPS, MIN_WEIGHT_BPS, NEUTRAL_WEIGHT_BPS
from exchange.campaigns.service import CONVERSION_FLOOR_PCT_DEFAULT
from exchange.outcomes.stats import ANY_SEGMENT
from exchange.scoring.history import CampaignCounts
from exchange.scoring.rules import Counts
from exchange.teams import performance

__all__ = [
    "CONVERSION_FLOOR_PCT", "NEUTRAL_WEIGHT_BPS", "Weight", "segment_for", "weight_bps", "weights",
]  # fmt: skip

# The least weight a campaign ranked by conversion gets, in % of neutral (see the docstring),
# unless the campaign sets its own ``conversion_floor_pct``.
CONVERSION_FLOOR_PCT = CONVERSION_FLOOR_PCT_DEFAULT
PCT = 100


class Weight(msgspec.Struct, frozen=True, kw_only=True):
    weight_bps: int
    rate: float  # the campaign's smoothed conversion in the segment
    base: float  # the base rate it is compared to
    trials: int
    successes: int
    segment: str

    def note(self) -> str:
        """One line for the trace, e.g. ``conversion 18% vs 11%: x1.64``."""
        return (
            f"conversion {performance.pct(self.rate)} vs {performance.pct(self.base)} "
            f"({performance.basis(self.trials, self.successes)}, {self.segment}): "
            f"x{self.weight_bps / BPS_PER_WHOLE:.2f}"
        )


def segment_for(priority: str | None) -> str:
    """The segment a lead's campaign conversion is counted and looked up under."""
    return f"priority={priority}" if priority else ANY_SEGMENT


def weight_bps(rate: float, base: float, floor_pct: int = CONVERSION_FLOOR_PCT) -> int:
    """``rate / base`` in basis points, rounded once, within the ranking's bounds and the
    floor."""
    if not 0 <= floor_pct <= PCT:
        raise ValueError(f"floor_pct must be 0 to {PCT}: {floor_pct}")
    least = max(MIN_WEIGHT_BPS, NEUTRAL_WEIGHT_BPS * floor_pct // PCT)
    raw = round(rate / base * NEUTRAL_WEIGHT_BPS) if base > 0 else NEUTRAL_WEIGHT_BPS
    return min(max(raw, least), MAX_WEIGHT_BPS)


def weights(
    counts: CampaignCounts,
    campaign_ids: frozenset[str] | set[str],
    segment: str,
    *,
    floors: Mapping[str, int] | None = None,
    prior_strength: int = performance.PRIOR_STRENGTH_DEFAULT,
) -> dict[str, Weight]:
    """The weight of each of ``campaign_ids`` (the vertical's campaigns ranked by conversion)
    for a lead of ``segment``; ``counts`` as ``CampaignHistory`` serves them; ``floors`` each
    campaign's own floor (default ``CONVERSION_FLOOR_PCT``)."""
    per = {c: _counts(counts.get(c, {}), segment) for c in campaign_ids}
    total = performance.Counts(
        trials=sum(c.trials for c in per.values()),
        successes=sum(c.successes for c in per.values()),
    )
    # The same clamp ``posterior`` puts on its centre: a base of 0 (no wins yet) stays positive.
    base = min(max(performance.team_rate(total), 1e-3), 1 - 1e-3)
    found = {}
    for campaign_id, c in per.items():
        alpha, beta = performance.posterior(c, base, prior_strength)
        rate = alpha / (alpha + beta)
        found[campaign_id] = Weight(
            weight_bps=weight_bps(rate, base, (floors or {}).get(campaign_id, CONVERSION_FLOOR_PCT)),
            rate=rate, base=base,
            trials=c.trials, successes=c.successes, segment=segment,
        )  # fmt: skip
    return found


def _counts(by_segment: Mapping[str, Counts], segment: str) -> performance.Counts:
    found = by_segment.get(segment)
    if found is None:
        return performance.Counts()
    return performance.Counts(trials=found.trials, successes=min(found.successes, found.trials))
