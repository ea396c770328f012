"""The one dialect-specific statement the ledger needs: INSERT ... ON CONFLICT."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def dialect_insert(conn: AsyncConnection, table: sa.Table) -> Any:
    """An INSERT that can take ``on_conflict_do_nothing`` on either database."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)
