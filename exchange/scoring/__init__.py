"""Lead scoring: a per-vertical score (0-100) and priority band, worked out at intake from the
lead's non-PII fields (operator rules) and its source's conversion history (learned)."""

from exchange.scoring.history import HISTORY_TTL_S, SourceHistory
from exchange.scoring.rules import (
    Band,
    Counts,
    LeadScore,
    Rule,
    ScorePart,
    ScoringConfig,
    learned_points,
    priority_of,
    score,
    validate_config,
)

__all__ = [
    "HISTORY_TTL_S", "SourceHistory", "Band", "Counts", "ScorePart", "Rule", "LeadScore", "ScoringConfig",
    "learned_points", "priority_of", "score", "validate_config",
]  # fmt: skip
