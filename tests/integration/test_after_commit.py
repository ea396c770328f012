"""Work after a commit (the outboxes' wake-up): runs once after COMMIT, never after ROLLBACK."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from exchange.store.db import Database, after_commit


def test_work_runs_once_after_the_commit_and_is_dropped_on_rollback(backend):
    seen: list[list[str]] = []

    async def main() -> None:
        db = Database(backend)
        try:
            async with db.write() as conn:
                await conn.execute(sa.text("SELECT 1"))
                after_commit(conn, "test", seen.append, list).append("a")
                after_commit(conn, "test", seen.append, list).append("b")  # the same accumulator
                assert seen == []  # not before the commit
            assert seen == [["a", "b"]]

            class Boom(Exception):
                pass

            try:
                async with db.write() as conn:
                    after_commit(conn, "test", seen.append, list).append("rolled back")
                    raise Boom
            except Boom:
                pass
            async with db.write() as conn:  # the same pooled connection, a new transaction
                after_commit(conn, "test", seen.append, list).append("c")
            assert seen == [["a", "b"], ["c"]]
        finally:
            await db.dispose()

    asyncio.run(main())
