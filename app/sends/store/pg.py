"""The worker's commits on PostgreSQL: one statement on a psycopg connection of its own.

Every few messages the worker records results and hands the next group over. Through a
SQLAlchemy session this was four round trips (BEGIN, record, hand over, COMMIT) plus
SQLAlchemy's per-statement work. Here it is one statement (commit_statement: the results in a
CTE, then the hand-over), so one round trip and, in autocommit, one transaction, prepared on
the server, with the very statements the pooled path runs. `synchronous_commit` stays as the
server has it: a hand-over must be on disk before its content goes.

It runs on a thread. On psycopg's async connection, on the event loop, it used less CPU but
each commit took longer (the busy loop noticed the reply late): in paired runs the rate was
lower every time. Several commits in flight together (so group commit shares a flush) were
measured too: with the hand-over window full they only split it into smaller commits, no
faster, so one commit runs at a time.
"""

from __future__ import annotations

import asyncio
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
    """Records results and hands rows over in one statement, on a thread."""

    def __init__(self, engine: Engine, owner: str, policy: RetryPolicy) -> None:
        self.owner = owner
        self.policy = policy
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        self._connect: tuple[list[Any], dict[str, Any]] = (list(args), dict(kwargs))
        self._stmt = DriverStatement(commit_statement(), engine.dialect)
        self._conn: psycopg.Connection[Any] | None = None

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
        return await asyncio.to_thread(self._run, params)

    def _run(self, params: dict[str, Any]) -> set[int]:
        if self._conn is None or self._conn.closed:
            args, kwargs = self._connect
            self._conn = psycopg.Connection.connect(*args, autocommit=True, **kwargs)
        try:
            cur = self._conn.execute(self._stmt.sql, params, prepare=True)
            return {row[0] for row in cur.fetchall()}
        except BaseException:
            self.close()  # a broken connection is not reused
            raise

    def close(self) -> None:
        """Close the connection (it opens again on the next commit)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
