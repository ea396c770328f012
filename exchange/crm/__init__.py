"""CRM sync: sold and assigned leads, and outcomes on them, pushed to the CRM a team or buyer
already uses, through a generic signed webhook or HubSpot- and Salesforce-format adapters.

outbox    the hook the lead's events call (``record``): one ``crm_syncs`` row per connection
          that wants the event, written in the event's transaction; a worker is asked after the
          commit. Cheap when the party has no connection (a per-process cached set).
adapters  pure translators, one module per kind: the request to send, what an answer means.
sender    the core: claims a due row, sends it (aiohttp, a timeout on everything), records
          synced / retry with backoff / failed; later events on a lead update the CRM record
          the first one created (``external_id``).
service   connections (secrets never shown back) and a lead's sync status, for the API.
"""

from exchange.crm.messages import EVENT_ASSIGNED as ASSIGNED
from exchange.crm.messages import EVENT_SOLD as SOLD
from exchange.crm.messages import OUTCOME_PREFIX
from exchange.crm.messages import assigned_event as assigned
from exchange.crm.outbox import record


def outcome(kind: str) -> str:
    """The event of an outcome of this kind: ``outcome:won``."""
    return OUTCOME_PREFIX + kind


__all__ = ["ASSIGNED", "SOLD", "assigned", "outcome", "record"]
