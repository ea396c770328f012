"""What a campaign that buys calls says about them, and the shape of a call address.

A call campaign names where its calls ring (an E.164 number or a SIP URI) and the minimum
duration a call must last to be billed: a caller who hangs up at once is not a customer. A
team's campaign may leave the destination out: its agents' own destinations ring instead, in
the order the team's strategy chooses (``exchange.calls.ringing``).
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec

ADDRESS_MAX_CHARS = 200
MIN_DURATION_MAX_S = 3_600  # an hour: far beyond any billable threshold in use
DEFAULT_MIN_DURATION_S = 90  # the usual pay-per-call threshold
# E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# sip:user@host or sips:user@host[:port][;params]; no spaces, nothing that needs quoting.
_SIP = re.compile(r"^sips?:[A-Za-z0-9._~%!$&'()*+,;=:-]+@[A-Za-z0-9.-]+(:[0-9]{1,5})?(;[^\s]*)?$")

Address = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=ADDRESS_MAX_CHARS,
        description="an E.164 number (+14155550100) or a SIP URI (sip:queue@pbx.example.com)",
    ),
]  # fmt: skip


def address_problem(address: str) -> str | None:
    """Why ``address`` cannot ring, or None."""
    if _E164.match(address) or _SIP.match(address):
        return None
    return "not an E.164 number (+14155550100) or a SIP URI (sip:user@host)"


class CallTerms(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A campaign's call terms: set, the campaign buys calls and only calls."""

    destination: Address | None = None  # None: a team's agents ring (teams only)
    # A call shorter than this is not billed (and the supplier is not paid for it).
    min_duration_s: Annotated[int, msgspec.Meta(ge=0, le=MIN_DURATION_MAX_S)] = (
        DEFAULT_MIN_DURATION_S
    )


def terms_problems(terms: CallTerms, *, for_team: bool, path: str = "call") -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if terms.destination is None:
        if not for_team:
            problems.append((f"{path}.destination", "a buyer's call campaign names where its calls ring"))
    elif problem := address_problem(terms.destination):
        problems.append((f"{path}.destination", problem))
    return problems
