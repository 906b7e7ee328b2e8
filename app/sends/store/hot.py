"""The worker's hot transaction on SQLite: record results, hand the next group over, on the driver.

Every few messages the worker writes the results it has and marks the next small group as
handed over (store.ledger.record_rows + store.lease.hand_over). Through SQLAlchemy on a thread
that cost more than sending the messages: a thread hop, a GIL hand-off to a busy event loop,
and SQLAlchemy's per-statement work, about a millisecond in all, while the relay waits for the
next group. Here the same statements, compiled once by SQLAlchemy from the ledger's own
constructs, run on the sqlite3 connection itself, on the event loop, which a small write in WAL
mode barely holds up (tens of microseconds).

It never waits for the write lock: when another process holds it (a page saving a subscriber,
a CSV import), `run` returns None and the caller takes the pooled path on a thread, which
queues on the busy timeout as every other writer does. PostgreSQL always takes that path.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import Engine, bindparam, update
from sqlalchemy.engine.interfaces import DBAPIConnection

from app.models import DeliveryStatus
from app.sends.policy import RetryPolicy
from app.sends.store.lease import HAND_OVER
from app.sends.store.ledger import outcome_groups, sqlite_record
from app.sends.store.rows import D, Result

# lease.HAND_OVER for one row, for an executemany.
_HAND_OVER_ONE = (
    update(D)
    .where(
        D.c.id == bindparam("b_id"),
        D.c.status == DeliveryStatus.sending,
        D.c.lease_owner == bindparam("owner"),
    )
    .values(handed_at=bindparam("now"))
)


class _Compiled:
    """One statement as SQL text and a function from named values to positional parameters.

    An expanding IN parameter (a list) becomes one placeholder per item: sqlite3 keeps each
    count's statement prepared, and a plain IN list is what SQLite plans as key lookups (a
    json_each() subquery instead cost milliseconds).
    """

    def __init__(self, stmt: Any, engine: Engine) -> None:
        compiled = stmt.compile(dialect=engine.dialect)
        self._sql: str = compiled.string
        self._defaults = {k: _plain(v) for k, v in compiled.params.items()}
        self._names: list[str] = list(compiled.positiontup or [])
        self._expanding = [n for n in self._names if f"__[POSTCOMPILE_{n}]" in self._sql]
        self._texts: dict[int, str] = {}

    def sql(self, values: dict[str, Any]) -> str:
        """Return the SQL for these values (placeholders for each item of a list)."""
        if not self._expanding:
            return self._sql
        (name,) = self._expanding
        count = len(values[name])
        text = self._texts.get(count)
        if text is None:
            marks = ", ".join("?" * count)
            text = self._texts[count] = self._sql.replace(f"__[POSTCOMPILE_{name}]", marks)
        return text

    def params(self, values: dict[str, Any]) -> tuple[Any, ...]:
        """Return the positional parameters, lists spread out in place."""
        out: list[Any] = []
        for n in self._names:
            value = values[n] if n in values else self._defaults[n]
            if n in self._expanding:
                out.extend(value)
            else:
                out.append(value)
        return tuple(out)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


class SQLiteHotPath:
    """Records results and hands rows over in one transaction on a raw sqlite3 connection."""

    def __init__(self, engine: Engine, owner: str, policy: RetryPolicy) -> None:
        self.owner = owner
        self.policy = policy
        self._engine = engine
        # Timestamps stored exactly as SQLAlchemy stores them (UTCDateTime on SQLite).
        processor = D.c.updated_at.type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
        assert processor is not None
        self._stamp: Callable[[datetime | None], Any] = processor
        self._record = {sent: _Compiled(sqlite_record(D.name, sent), engine) for sent in (0, 1)}
        self._hand_over = _Compiled(HAND_OVER, engine)
        self._hand_over_one = _Compiled(_HAND_OVER_ONE, engine)
        self._conn: DBAPIConnection | None = None
        self._raw: Any = None  # the pool's wrapper, returned to the pool on close()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._raw = self._engine.raw_connection()  # the engine's pragmas are applied
            conn = self._raw.driver_connection
            # Ours alone: busy_timeout=0 must never reach the pool's other users.
            self._raw.detach()
            conn.isolation_level = None  # our own BEGIN and COMMIT
            # Never wait for the write lock on the event loop: busy means "take the thread".
            conn.execute("PRAGMA busy_timeout=0")
            self._conn = conn
        assert isinstance(self._conn, sqlite3.Connection)
        return self._conn

    def run(
        self, results: Sequence[Result], handed: Sequence[int], now: datetime
    ) -> set[int] | None:
        """Write `results` and mark `handed`; return the ids marked, or None if the lock is busy.

        Only plain results belong here: a hard bounce (which suppresses an address) goes the
        pooled way, where suppressions and their events are written by their own services.
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
        if not results:
            return
        stamp = self._stamp(now)
        for status, rows in outcome_groups(results, now, self.policy).items():
            stmt = self._record[status == DeliveryStatus.sent]
            shared = {"b_status": _plain(status), "b_owner": self.owner, "b_now": stamp}
            conn.executemany(
                stmt.sql(shared),
                [
                    stmt.params({**shared, **row, "b_next": self._stamp(row["b_next"])})
                    for row in rows
                ],
            )

    def _mark(self, conn: sqlite3.Connection, handed: Sequence[int], now: datetime) -> set[int]:
        if not handed:
            return set()
        # lease.HAND_OVER one row at a time (an executemany of a prepared statement costs
        # about half its RETURNING form); the count says whether every row was still ours.
        one, stamp = self._hand_over_one, self._stamp(now)
        shared = {"owner": self.owner, "now": stamp}
        marked = conn.executemany(
            one.sql(shared), [one.params({**shared, "b_id": i}) for i in handed]
        ).rowcount
        if marked == len(handed):
            return set(handed)
        # Some leases moved on (this worker stalled): ask which rows carry this very mark.
        stmt = self._hand_over
        values = {"ids": list(handed), "owner": self.owner, "now": stamp}
        return {row[0] for row in conn.execute(stmt.sql(values), stmt.params(values))}

    def close(self) -> None:
        """Give the connection back (it is opened again on the next run)."""
        raw, self._raw, self._conn = self._raw, None, None
        if raw is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail too
                raw.close()


def _busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)
