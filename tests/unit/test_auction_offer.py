"""The ping offer built from a ranked auction."""

from __future__ import annotations

import datetime as dt

import pytest

from exchange.auction import (
    DEFAULT_OFFER_TTL,
    Bid,
    Mode,
    OfferedBid,
    PercentMargin,
    PingOffer,
    RankedAuction,
    build_offer,
    rank,
)

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
TEN_PERCENT = PercentMargin(bps=1_000)


def ranked(
    *bids: tuple[str, str, int, int], mode: Mode = Mode.FREE_PICK, max_sells: int = 1
) -> RankedAuction:
    return rank(
        [Bid(campaign_id=c, buyer_id=b, amount_minor=a, tier=t) for c, b, a, t in bids],
        mode,
        0,
        lambda _: TEN_PERCENT,
        max_sells=max_sells,
    )


def test_exclusive_offer_is_the_winners_payout() -> None:
    offer = build_offer(ranked(("a", "A", 1_000, 1), ("b", "B", 1_999, 1)), NOW)
    assert offer == PingOffer(
        payout_minor=1_799,  # 1999 - ceil(199.9)
        expires_at=NOW + DEFAULT_OFFER_TTL,
        bids=(OfferedBid(campaign_id="b", buyer_id="B", payout_minor=1_799),),
    )
    assert offer.promises() == [1_799]


def test_shared_offer_lists_the_top_n_distinct_buyers() -> None:
    auction = ranked(
        ("a1", "A", 1_000, 1),
        ("a2", "A", 1_100, 1),
        ("b", "B", 900, 1),
        ("c", "C", 500, 1),
        ("d", "D", 400, 1),
        max_sells=3,
    )
    offer = build_offer(auction, NOW, dt.timedelta(seconds=30))
    assert offer is not None
    offered = [(b.campaign_id, b.payout_minor) for b in offer.bids]
    assert offered == [("a2", 990), ("b", 810), ("c", 450)]
    assert offer.payout_minor == 2_250
    assert offer.expires_at == dt.datetime(2024, 5, 1, 12, 0, 30, tzinfo=dt.UTC)


def test_tiers_offer_comes_from_the_top_tier_only() -> None:
    auction = ranked(("t1", "A", 500, 1), ("t2", "B", 5_000, 2), mode=Mode.TIERS, max_sells=2)
    offer = build_offer(auction, NOW)
    assert offer is not None
    assert [b.campaign_id for b in offer.bids] == ["t1"]
    assert offer.payout_minor == 450


def test_nothing_eligible_means_no_offer() -> None:
    assert build_offer(ranked(), NOW) is None


def test_time_must_be_aware_and_ttl_positive() -> None:
    with pytest.raises(ValueError):
        build_offer(ranked(("a", "A", 1_000, 1)), dt.datetime(2024, 5, 1, 12, 0))
    with pytest.raises(ValueError):
        build_offer(ranked(("a", "A", 1_000, 1)), NOW, dt.timedelta(0))
