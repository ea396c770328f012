"""Notification templates: ``string.Template`` text over a fixed set of safe values.

A team writes its own subject and body per event and channel; they may only name the values in
``PLACEHOLDERS`` (no PII: a lead's personal data never leaves in a notification), and an unknown
name is refused when the team saves them (422), never found at send time.
"""

from __future__ import annotations

import string
from typing import Any

# The values a template may use, and what each is.
PLACEHOLDERS: dict[str, str] = {
    "event": "offered, assigned, reassigned or unowned",
    "agent_name": "the agent's name",
    "team_name": "the team's name",
    "lead_id": "the lead's id",
    "vertical": "the lead's vertical (slug)",
    "score": "the lead's score (empty when unscored)",
    "priority": "the lead's priority band (empty when none)",
    "expires_at": "when an offer expires (ISO 8601; empty for an assignment)",
    "link": "where the agent acts on it (API path; unowned: the lead's routing)",
    "routed_at": "when the lead was routed to the team (ISO 8601; unowned only)",
}

DEFAULT_SUBJECT = "Lead $lead_id $event ($vertical)"
DEFAULT_BODY = (
    "Lead $lead_id ($vertical, score $score, priority $priority) was $event to $agent_name"
    " of $team_name.\nOpen: $link\n"
)
# A lead nobody owns has no agent to name: its own default text.
DEFAULT_UNOWNED_SUBJECT = "Lead $lead_id has no owner ($vertical)"
DEFAULT_UNOWNED_BODY = (
    "Lead $lead_id ($vertical, score $score, priority $priority) was routed to $team_name at"
    " $routed_at and nobody owns it yet.\nOpen: $link\n"
)
DEFAULTS: dict[str, tuple[str, str]] = {"unowned": (DEFAULT_UNOWNED_SUBJECT, DEFAULT_UNOWNED_BODY)}
SUBJECT_MAX_CHARS = 200
BODY_MAX_CHARS = 5_000


def problems(text: str) -> list[str]:
    """Why ``text`` is not a usable template (empty when it is)."""
    template = string.Template(text)
    if not template.is_valid():
        return ["invalid placeholder syntax (write $name or ${name}; $$ for a dollar)"]
    unknown = sorted(set(template.get_identifiers()) - PLACEHOLDERS.keys())
    return [f"unknown placeholder ${name} (known: {', '.join(PLACEHOLDERS)})" for name in unknown]


def render(text: str, values: dict[str, Any]) -> str:
    """The template with every placeholder filled (a missing value renders empty)."""
    safe = {name: "" if values.get(name) is None else str(values[name]) for name in PLACEHOLDERS}
    return string.Template(text).safe_substitute(safe)
