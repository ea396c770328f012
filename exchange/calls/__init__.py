"""Call leads: a call is a lead of the ``call`` channel (docs/calls.md).

A call ping runs the auction among the campaigns that buy calls and answers with where the
call rings and until when the caller may connect; the telephony then reports the connect
(the caller's number makes the lead), who answered, and the end with its duration. A call is
sold, and billed, only once it lasted its campaign's minimum. Calls nobody buys go to the
team whose route takes them, and ring its agents by the team's strategy.

The pure decisions are ``terms``, ``ringing`` and ``states``; ``service`` runs them against
the database; ``exchange.api.calls`` is the HTTP face.
"""

from exchange.calls.ringing import CallDestination, RingPlan
from exchange.calls.terms import CallTerms, address_problem

__all__ = ["CallTerms", "CallDestination", "RingPlan", "address_problem"]
