"""The worker's commits on PostgreSQL: psycopg's async driver on the event loop, several at once.

Each commit waits for the server's WAL flush (milliseconds on most disks), and the hand-over
window lets only a few rows out per commit. One commit at a time, on a thread, left the relay
waiting for the flush most of the time. Here:

- commits overlap, each on a connection of its own (up to `overlap`), so PostgreSQL's group
  commit shares one flush among them and a row's mark never waits for an unrelated commit;
- each commit is one statement, so one round trip and its own transaction (commit_statement:
  the results in a CTE, then the hand-over), prepared on the server;
- it runs on the event loop (no thread hop, no GIL hand-off) with the very statements the
  pooled path runs (commit.record_statement, commit.hand_over_statement).

Overlapping commits never touch the same rows (each result and each hand-over belongs to one
commit), so they cannot deadlock each other; the stream keeps renewals and releases apart.
`synchronous_commit` stays as the server has it.
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

OVERLAP = 4  # commits in flight at once (each on its own connection)


class PostgresPath:
    """Records results and hands rows over with psycopg's async connections, on the loop."""

    def __init__(
        self, engine: Engine, owner: str, policy: RetryPolicy, overlap: int = OVERLAP
    ) -> None:
        self.owner = owner
        self.policy = policy
        self.overlap = overlap
        dialect = engine.dialect
        args, kwargs = dialect.create_connect_args(engine.url)
        self._connect: tuple[list[Any], dict[str, Any]] = (list(args), dict(kwargs))
        self._stmt = DriverStatement(commit_statement(), dialect)
        self._idle: list[psycopg.AsyncConnection[Any]] = []  # open, no commit on them
        self._busy: set[psycopg.AsyncConnection[Any]] = set()

    async def _take(self) -> psycopg.AsyncConnection[Any]:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        args, kwargs = self._connect
        return await psycopg.AsyncConnection.connect(*args, autocommit=True, **kwargs)

    async def commit(
        self, results: Sequence[Result], handed: Sequence[int], now: datetime
    ) -> set[int] | None:
        """Record and hand over in one transaction, one round trip; return the ids marked."""
        # No results: empty arrays, which record nothing.
        values: dict[str, Any] = {"b_ids": [], "b_statuses": [], "b_replies": [], "b_nexts": []}
        for _, (params,) in record_batches(POSTGRES, D, self.owner, results, now, self.policy):
            values = params  # PostgreSQL records every result in one statement
        (mark,) = hand_over_params(POSTGRES, self.owner, handed, now)
        params = self._stmt.params({"b_owner": self.owner, "b_now": now, **values, **mark})
        conn = await self._take()
        self._busy.add(conn)
        try:
            # Autocommit: the one statement is its own transaction.
            cur = await conn.execute(self._stmt.sql, params, prepare=True)
            marked = {row[0] for row in await cur.fetchall()}
        except BaseException:
            self._busy.discard(conn)
            _finish(conn)  # a broken (or cancelled) connection is not reused
            raise
        self._busy.discard(conn)
        self._idle.append(conn)
        return marked

    def close(self) -> None:
        """Close every connection (they open again on the next commit)."""
        conns = [*self._idle, *self._busy]
        self._idle, self._busy = [], set()
        for conn in conns:
            _finish(conn)


def _finish(conn: psycopg.AsyncConnection[Any]) -> None:
    # The libpq close is synchronous and safe from anywhere; the stream never closes a path
    # while one of its commits is in flight.
    with contextlib.suppress(Exception):
        conn.pgconn.finish()
