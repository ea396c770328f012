"""Find the campaigns a lead could match without scanning every campaign.

Per vertical, each active campaign is filed under its *gate*: the first filter in
``filters.evaluation_order`` when that filter is one the index can look up (states in, zip in,
zip prefix), keyed by (field, value). Campaigns without such a filter go to a wildcard bucket.
``candidates`` costs one lookup per indexed field (plus one per prefix length) and then grows with
the buckets it hits, not with the number of campaigns.

Because the gate runs first in ``evaluate`` too, a campaign the index skips would fail exactly
there: ``excluded`` names that reason (or ``campaign_paused`` / ``schedule_closed``, which
``evaluate`` checks before filters) lazily, only when a trace asks for it.

``candidates`` takes the lead's fields rather than a state and a zip: filters name the field
they test, and a vertical may have several state or zip fields.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from exchange.matching.eligibility import (
    CampaignRules,
    Decision,
    filtered_decision,
    lead_independent_exclusion,
)
from exchange.matching.filters import (
    INDEXABLE_KINDS,
    Filter,
    StatesIn,
    ZipIn,
    ZipPrefix,
    evaluation_order,
)
from exchange.matching.localtime import require_aware


class _Vertical:
    """The buckets of one vertical. Campaigns are referred to by position, to keep their order."""

    def __init__(self) -> None:
        self.campaigns: list[CampaignRules] = []
        self.gates: list[Filter | None] = []
        self.wildcard: list[int] = []
        self.by_value: dict[tuple[str, str], list[int]] = {}
        self.by_prefix: dict[tuple[str, str], list[int]] = {}
        self.value_fields: set[str] = set()
        self.prefix_lengths: dict[str, set[int]] = {}  # field -> prefix lengths in use

    def add(self, campaign: CampaignRules) -> None:
        position = len(self.campaigns)
        self.campaigns.append(campaign)
        gate = _gate(campaign)
        self.gates.append(gate)
        if not campaign.active:
            return  # never a candidate; ``excluded`` reports it as paused
        if gate is None:
            self.wildcard.append(position)
        elif isinstance(gate, ZipPrefix):
            for prefix in set(gate.prefixes):
                self.by_prefix.setdefault((gate.field, prefix), []).append(position)
                self.prefix_lengths.setdefault(gate.field, set()).add(len(prefix))
        elif isinstance(gate, (StatesIn, ZipIn)):
            values = gate.states if isinstance(gate, StatesIn) else gate.zips
            for value in values:
                self.by_value.setdefault((gate.field, value), []).append(position)
            self.value_fields.add(gate.field)

    def positions(self, fields: Mapping[str, Any]) -> list[int]:
        hits: list[int] = list(self.wildcard)
        for field in self.value_fields:
            value = fields.get(field)
            if isinstance(value, str):
                hits += self.by_value.get((field, value), ())
        for field, lengths in self.prefix_lengths.items():
            value = fields.get(field)
            if isinstance(value, str):
                for length in lengths:
                    if len(value) >= length:
                        hits += self.by_prefix.get((field, value[:length]), ())
        return sorted(set(hits))  # overlapping prefixes may file a campaign twice


def _gate(campaign: CampaignRules) -> Filter | None:
    ordered = evaluation_order(campaign.filters)
    if ordered and isinstance(ordered[0], INDEXABLE_KINDS):
        return ordered[0]
    return None


class CampaignIndex:
    """An immutable index over campaigns of any verticals; rebuild it when campaigns change."""

    def __init__(self, campaigns: Iterable[CampaignRules]) -> None:
        self._verticals: dict[str, _Vertical] = {}
        seen: set[str] = set()
        for campaign in campaigns:
            if campaign.campaign_id in seen:
                raise ValueError(f"campaign {campaign.campaign_id!r} appears twice")
            seen.add(campaign.campaign_id)
            self._verticals.setdefault(campaign.vertical, _Vertical()).add(campaign)
        self._size = len(seen)

    def __len__(self) -> int:
        return self._size

    def campaigns(self, vertical: str) -> list[CampaignRules]:
        """Every campaign of the vertical, active or not, in the order given."""
        bucket = self._verticals.get(vertical)
        return list(bucket.campaigns) if bucket else []

    def candidates(self, vertical: str, lead_fields: Mapping[str, Any]) -> list[CampaignRules]:
        """Active campaigns of the vertical whose gate filter the lead passes, in the order
        given. A superset of the eligible ones: evaluate each with ``evaluate``."""
        bucket = self._verticals.get(vertical)
        if bucket is None:
            return []
        return [bucket.campaigns[position] for position in bucket.positions(lead_fields)]

    def excluded(
        self, vertical: str, lead_fields: Mapping[str, Any], now: dt.datetime
    ) -> Iterator[Decision]:
        """A decision, with the reason ``evaluate`` would give, for every campaign of the
        vertical that ``candidates`` leaves out. Lazy: costs nothing unless iterated."""
        bucket = self._verticals.get(vertical)
        if bucket is None:
            return
        now = require_aware(now)
        chosen = set(bucket.positions(lead_fields))
        for position, campaign in enumerate(bucket.campaigns):
            if position in chosen:
                continue
            early = lead_independent_exclusion(campaign, now)
            if early is not None:
                yield early
                continue
            gate = bucket.gates[position]
            assert gate is not None  # active, not wildcard, not chosen: its gate failed
            yield filtered_decision(campaign, gate, lead_fields)
