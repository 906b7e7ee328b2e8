"""The worker's commits on PostgreSQL: psycopg's async driver, on the event loop, one statement.

Every few messages the worker records results and hands the next group over. Through
SQLAlchemy on a thread each commit cost a thread hop, a GIL hand-off to a busy loop, and four
round trips (BEGIN, record, hand over, COMMIT). Here it is one statement (commit_statement:
the results in a CTE, then the hand-over), so one round trip and, in autocommit, one
transaction, prepared on the server and run on the loop with the very statements the pooled
path runs. `synchronous_commit` stays as the server has it: a hand-over must be on disk
before its content goes.

Several commits in flight at once (so group commit shares one WAL flush) were tried and
measured: with the hand-over window full, they only split it into smaller commits (the rate
was the same or lower, and CPU per message higher), so one commit runs at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import Engine

from app.sends.policy import RetryPolicy
from app.sends.store.commit import (
    POSTGRES,
    DriverStatement,
    commit_statement,
    hand_over_params,
    record_batches,
)
from app.sends.store.rows import D, Result


class PostgresPath:
    """Records results and hands rows over on a psycopg async connection, on the loop."""

    def __init__(self, engine: Engine, owner: str, policy: RetryPolicy) -> None:
        self.owner = owner
        self.policy = policy
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        self._connect: tuple[list[Any], dict[str, Any]] = (list(args), dict(kwargs))
        self._stmt = DriverStatement(commit_statement(), engine.dialect)
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def commit(
        self, results: Sequence[Result], handed: Sequence[int], now: datetime
    ) -> set[int] | None:
        """Record and hand over in one statement, one round trip; return the ids marked."""
        # No results: empty arrays, which record nothing.
        values: dict[str, Any] = {"b_ids": [], "b_statuses": [], "b_replies": [], "b_nexts": []}
        for _, (params,) in record_batches(POSTGRES, D, self.owner, results, now, self.policy):
            values = params  # PostgreSQL records every result in one statement
        (mark,) = hand_over_params(POSTGRES, self.owner, handed, now)
        params = self._stmt.params({"b_owner": self.owner, "b_now": now, **values, **mark})
        if self._conn is None or self._conn.closed:
            args, kwargs = self._connect
            self._conn = await psycopg.AsyncConnection.connect(*args, autocommit=True, **kwargs)
        try:
            cur = await self._conn.execute(self._stmt.sql, params, prepare=True)
            return {row[0] for row in await cur.fetchall()}
        except BaseException:
            self.close()  # a broken (or cancelled) connection is not reused
            raise

    def close(self) -> None:
        """Close the connection (it opens again on the next commit)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            # libpq's close is synchronous; the stream never closes a path mid-commit.
            with contextlib.suppress(Exception):
                conn.pgconn.finish()
