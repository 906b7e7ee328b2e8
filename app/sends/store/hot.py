"""The worker's hot transaction on SQLite: record results, hand the next group over, on the driver.

Every few messages the worker writes the results it has and marks the next small group as
handed over (store/commit.py). Through SQLAlchemy on a thread that cost more than sending the
messages: a thread hop, a GIL hand-off to a busy event loop, and SQLAlchemy's per-statement
work, about a millisecond in all, while the relay waits for the next group. Here the same
statements (commit.record_statement, commit.hand_over_statement), compiled once by SQLAlchemy,
run on the sqlite3 connection itself, on the event loop, which a small write in WAL mode
barely holds up (tens of microseconds).

It never waits for the write lock: when another process holds it (a page saving a subscriber,
a CSV import), it returns None and the caller takes the pooled path on a thread, which
queues on the busy timeout as every other writer does.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine.interfaces import DBAPIConnection

from app.sends.policy import RetryPolicy
from app.sends.store.commit import (
    DriverStatement,
    hand_over_params,
    hand_over_statement,
    record_batches,
)
from app.sends.store.rows import D, Result

DIALECT = "sqlite"


class SQLiteHotPath:
    """Records results and hands rows over in one transaction on a raw sqlite3 connection."""

    def __init__(self, engine: Engine, owner: str, policy: RetryPolicy) -> None:
        self.owner = owner
        self.policy = policy
        self._engine = engine
        self._dialect = engine.dialect
        self._compiled: dict[Any, DriverStatement] = {}  # by statement: compiled once
        self._hand_over = self._driver(hand_over_statement(DIALECT))
        self._conn: DBAPIConnection | None = None
        self._raw: Any = None  # the pool's wrapper, returned to the pool on close()

    def _driver(self, stmt: Any) -> DriverStatement:
        compiled = self._compiled.get(stmt)
        if compiled is None:
            compiled = self._compiled[stmt] = DriverStatement(stmt, self._dialect)
        return compiled

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._raw = self._engine.raw_connection()  # the engine's pragmas are applied
            conn = self._raw.driver_connection
            # Ours alone: busy_timeout=0 must never reach the pool's other users.
            self._raw.detach()
            conn.isolation_level = None  # our own BEGIN and COMMIT
            # Never wait for the write lock on the event loop: busy means "take the thread".
            conn.execute("PRAGMA busy_timeout=0")
            # Never checkpoint on the event loop either: a checkpoint copies the WAL into the
            # database and syncs both (pwrite and fdatasync were a quarter of this path's
            # time). The worker's other writers (claims, renewals, on threads) checkpoint as
            # every connection does, past 1000 pages, so the WAL stays bounded.
            conn.execute("PRAGMA wal_autocheckpoint=0")
            self._conn = conn
        assert isinstance(self._conn, sqlite3.Connection)
        return self._conn

    async def commit(
        self, results: Sequence[Result], handed: Sequence[int], now: datetime
    ) -> set[int] | None:
        """Run the transaction on the loop (see run)."""
        return self.run(results, handed, now)

    def run(
        self, results: Sequence[Result], handed: Sequence[int], now: datetime
    ) -> set[int] | None:
        """Write `results` and mark `handed`; return the ids marked, or None if the lock is busy.

        Only plain results belong here: a hard bounce (which suppresses an address) goes the
        session's way, where suppressions and their events are written by their own services.
        """
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _busy(exc):
                return None
            self.close()
            raise
        try:
            self._write(conn, results, now)
            marked = self._mark(conn, handed, now)
            conn.execute("COMMIT")
        except BaseException:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                self.close()  # a broken connection is not reused
            raise
        return marked

    def _write(self, conn: sqlite3.Connection, results: Sequence[Result], now: datetime) -> None:
        for stmt, params in record_batches(DIALECT, D, self.owner, results, now, self.policy):
            driver = self._driver(stmt)
            conn.executemany(driver.sql, [driver.params(p) for p in params])

    def _mark(self, conn: sqlite3.Connection, handed: Sequence[int], now: datetime) -> set[int]:
        if not handed:
            return set()
        stmt = self._hand_over
        params = [stmt.params(p) for p in hand_over_params(DIALECT, self.owner, handed, now)]
        # The count says whether every row was still ours.
        if conn.executemany(stmt.sql, params).rowcount == len(handed):
            return set(handed)
        # Some leases moved on (this worker stalled): mark again row by row (the same mark).
        return {
            i for i, p in zip(handed, params, strict=True) if conn.execute(stmt.sql, p).rowcount
        }

    def close(self) -> None:
        """Give the connection back (it is opened again on the next run)."""
        raw, self._raw, self._conn = self._raw, None, None
        if raw is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail too
                raw.close()


def _busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)
