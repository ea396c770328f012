"""Outcome feedback: what happened to a lead after it was sold or assigned (contacted,
qualified, appointment, won with a value, lost or bad lead with a reason), reported by its
agent or buyer over the API, the buyers SDK or a signed postback URL, and the conversion counts
routing and scoring learn from (``stats``). See docs/outcomes.md.
"""

from exchange.outcomes import postback, stats
from exchange.outcomes.messages import (
    FINAL_KINDS,
    REASON_MAX_CHARS,
    VALUE_MINOR_MAX,
    FirstResponse,
    Outcome,
    OutcomeChannel,
    OutcomeIn,
    OutcomeKind,
    Outcomes,
    PostbackInfo,
    ReporterKind,
)
from exchange.outcomes.service import (
    Reporter,
    agent_closed,
    agent_contacted,
    list_outcomes,
    problems,
    report,
    reporter,
)
from exchange.outcomes.stats import (
    ANY_SEGMENT,
    Counts,
    agent_subject,
    campaign_subject,
    source_subject,
    team_subject,
)

__all__ = [
    "ANY_SEGMENT", "FINAL_KINDS", "REASON_MAX_CHARS", "VALUE_MINOR_MAX", "Counts", "FirstResponse",
    "Outcome", "OutcomeChannel", "OutcomeIn", "OutcomeKind", "Outcomes", "PostbackInfo",
    "Reporter", "ReporterKind", "agent_closed", "agent_contacted", "agent_subject",
    "campaign_subject", "list_outcomes", "postback", "problems", "report", "reporter",
    "source_subject", "stats", "team_subject",
]  # fmt: skip
