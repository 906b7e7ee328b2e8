"""The worker's commits on PostgreSQL: psycopg's async driver on the event loop, several at once.

Each commit waits for the server's WAL flush (milliseconds on most disks), and the hand-over
window lets only a few rows out per commit. One commit at a time, on a thread, left the relay
waiting for the flush most of the time. Here:

- commits overlap, each on a connection of its own (up to `overlap`), so PostgreSQL's group
  commit shares one flush among them and a row's mark never waits for an unrelated commit;
- each commit is one round trip (pipeline mode: BEGIN, the record statements, the hand-over,
  COMMIT in one write), with statements prepared on the server;
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

from app.models import DeliveryStatus
from app.sends.policy import RetryPolicy
from app.sends.store.commit import (
    POSTGRES,
    DriverStatement,
    hand_over_params,
    hand_over_statement,
    outcome_groups,
    record_params,
    record_statement,
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
        self._record = {
            sent: DriverStatement(record_statement(POSTGRES, D.name, sent), dialect)
            for sent in (False, True)
        }
        self._hand_over = DriverStatement(hand_over_statement(POSTGRES), dialect)
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
        statements: list[tuple[str, Any]] = []
        for status, rows in outcome_groups(results, now, self.policy).items():
            stmt = self._record[status == DeliveryStatus.sent]
            (params,) = record_params(POSTGRES, self.owner, status, rows, now)
            statements.append((stmt.sql, stmt.params(params)))
        mark = None
        if handed:
            (params,) = hand_over_params(POSTGRES, self.owner, handed, now)
            mark = self._hand_over.params(params)
        conn = await self._take()
        self._busy.add(conn)
        try:
            async with conn.pipeline(), conn.transaction():
                for sql, params in statements:
                    await conn.execute(sql, params, prepare=True)
                cur = None
                if mark is not None:
                    cur = await conn.execute(self._hand_over.sql, mark, prepare=True)
            marked = {row[0] for row in await cur.fetchall()} if cur is not None else set()
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
