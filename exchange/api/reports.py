"""Reports: operators see every lead, a supplier only its own (buyers, teams and agents none)."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Request, get
from litestar.params import FromQuery, QueryParameter

from exchange.api.common import db_of, own_supplier
from exchange.auth.middleware import allow
from exchange.auth.parties import PartyKind, Principal
from exchange.reports import leads as report
from exchange.reports.messages import LeadReport


class ReportController(Controller):
    path = "/v1/reports"
    tags = ["reports"]
    guards = [allow(PartyKind.SUPPLIER)]

    @get(
        "/leads",
        summary="Leads received, sold and unsold, and their money, by channel, source, vertical, day",
        description=(
            "`from` and `to`: UTC instants (ISO 8601 with a zone, e.g. `2026-11-01T00:00:00Z`), "
            "`from` included, `to` not, at most 366 days apart. `group_by`: any of `channel`, "
            "`source`, `vertical`, `day` (UTC), repeated or comma-separated; rows are always "
            "split by currency. Filters: `channel`, `source`, `vertical`, `supplier_id` "
            "(operators). Test leads never count. A supplier's key sees only its own leads, "
            "and no revenue or margin (null)."
        ),
    )
    async def leads(
        self,
        request: Request,
        start: Annotated[str | None, QueryParameter(name="from")] = None,
        to: FromQuery[str | None] = None,
        group_by: FromQuery[list[str] | None] = None,
        channel: FromQuery[str | None] = None,
        source: FromQuery[str | None] = None,
        vertical: FromQuery[str | None] = None,
        supplier_id: FromQuery[uuid.UUID | None] = None,
    ) -> LeadReport:
        principal: Principal = request.user
        query = report.parse(
            start, to, group_by, channel=channel, source=source, vertical=vertical,
            supplier_id=own_supplier(principal, supplier_id, "leads"),
        )  # fmt: skip
        async with db_of(request).read() as conn:
            return await report.lead_report(conn, query, with_prices=principal.is_operator)
