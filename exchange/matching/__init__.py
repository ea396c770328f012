"""Campaign eligibility: filters, schedules, cap windows, reason codes and the index.

Pure decisions over plain values: no database, no HTTP, no clock (``now`` is always passed in,
an aware datetime). The code that reads campaigns, usage and balances wraps these.
"""

from exchange import reasons
from exchange.matching.caps import (
    Cap,
    CapBreach,
    CapWindow,
    cap_breach,
    cap_reason,
    validate_caps,
    window_bounds,
    window_key,
)
from exchange.matching.eligibility import (
    CampaignRules,
    Decision,
    PriceMode,
    evaluate,
    least_price_minor,
    validate_campaign,
)
from exchange.matching.expression import (
    EXPRESSION_MAX_CHARS,
    EXPRESSION_MAX_NODES,
    UnsafeExpression,
    compile_expression,
)
from exchange.matching.filters import (
    AgeRange,
    BooleanIs,
    EnumIn,
    EnumNotIn,
    Expression,
    Filter,
    NumberRange,
    StatesIn,
    StatesNotIn,
    ZipIn,
    ZipPrefix,
    ZipRadius,
    check_filters,
    evaluation_order,
    first_failing,
    validate_filters,
)
from exchange.matching.index import CampaignIndex
from exchange.matching.schedule import Interval, Schedule, is_open, next_open, validate_schedule

__all__ = [
    "EXPRESSION_MAX_CHARS", "EXPRESSION_MAX_NODES",
    "AgeRange", "BooleanIs", "CampaignIndex", "CampaignRules", "Cap", "CapBreach", "CapWindow",
    "Decision", "EnumIn", "EnumNotIn", "Expression", "Filter", "Interval", "NumberRange",
    "PriceMode", "Schedule", "StatesIn", "StatesNotIn", "UnsafeExpression", "ZipIn", "ZipPrefix",
    "ZipRadius", "cap_breach", "cap_reason", "check_filters", "compile_expression", "evaluate",
    "evaluation_order", "first_failing", "is_open", "least_price_minor", "next_open", "reasons",
    "validate_caps", "validate_campaign", "validate_filters", "validate_schedule", "window_bounds",
    "window_key",
]  # fmt: skip
