"""One commit path: the worker's results and hand-overs, fenced by the lease, per database.

Every few messages the worker records the results it has and marks the next small group of
rows as handed over, in one transaction (stream.py). This module holds the only statements
that do it, one builder per operation and database:

- record: SQLite updates one row per execution (an executemany: each statement stays
  prepared and walks the primary key); PostgreSQL updates one outcome group in one statement,
  its rows passed as arrays and unnested (an executemany would cost a round of driver work
  per row).
- hand over: SQLite marks one row per execution and checks the count; PostgreSQL marks the
  group with `id = ANY(:ids)` and returns the ids it marked.

Both are fenced by the lease (`fence`): a row whose lease expired and moved on to another
worker is not ours to write or to send.

Where the statements run is a `CommitPath`, picked by `commit_path` from the engine:
`PooledPath` (SQLAlchemy on a thread; either database, and the fallback), SQLite's driver on
the event loop (hot.py) and PostgreSQL's one statement a commit, one round trip (pg.py). The
driver paths run these very constructs, compiled once by SQLAlchemy (`DriverStatement`), so
what they store is what the pooled path stores.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Dialect,
    Engine,
    String,
    Table,
    any_,
    bindparam,
    case,
    func,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Update
from sqlalchemy.sql.elements import BindParameter

from app.models import DeliveryStatus
from app.sends.policy import Outcome, RetryPolicy
from app.sends.store.rows import D, O, Result

REPLY_MAX = 500
POSTGRES = "postgresql"


def fence(table: Table, owner: str | BindParameter[Any]) -> tuple[ColumnElement[bool], ...]:
    """Return the lease fence: the row is still `sending` and leased by `owner`."""
    return (table.c.status == DeliveryStatus.sending, table.c.lease_owner == owner)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


# Record ------------------------------------------------------------------------------------


def outcome_row(r: Result, now: datetime, policy: RetryPolicy) -> tuple[str, str, datetime | None]:
    """Return the status a result leaves behind, with the row's reply and next attempt."""
    reply = r.reply[:REPLY_MAX]
    if r.outcome == Outcome.retry and r.attempts >= policy.max_attempts:
        gave_up = f"gave up after {r.attempts} attempts: {reply}"[:REPLY_MAX]
        return DeliveryStatus.failed.value, gave_up, None
    if r.outcome == Outcome.retry:
        return DeliveryStatus.retry.value, reply, policy.next_attempt(now, r.attempts)
    return DeliveryStatus(r.outcome.value).value, reply, None


def outcome_groups(
    results: Sequence[Result], now: datetime, policy: RetryPolicy
) -> dict[str, list[dict[str, Any]]]:
    """Sort results by the status they leave behind, with each row's reply and next attempt."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        status, reply, next_at = outcome_row(r, now, policy)
        groups.setdefault(status, []).append(
            {"b_id": r.row_id, "b_reply": reply, "b_next": next_at}
        )
    return groups


@functools.cache
def record_statement(dialect: str, table_name: str, sent: bool = False) -> Update:
    """Return the fenced UPDATE that records results on this database.

    SQLite: one row per execution, one statement per outcome group (`sent` sets sent_at).
    PostgreSQL: every result in one statement, the rows passed as arrays and unnested.
    """
    table = D if table_name == D.name else O
    now = bindparam("b_now", type_=table.c.created_at.type)
    values: dict[str, Any] = {"lease_expires_at": None}
    if table is D:
        values["updated_at"] = now
    owned = fence(table, bindparam("b_owner", type_=String()))
    if dialect != POSTGRES:
        values["status"] = bindparam("b_status", type_=String())
        values["last_reply"] = bindparam("b_reply", type_=String())
        values["next_attempt_at"] = bindparam("b_next", type_=table.c.next_attempt_at.type)
        if sent:
            values["sent_at"] = now
        return update(table).where(table.c.id == bindparam("b_id"), *owned).values(values)
    v = (
        func.unnest(
            bindparam("b_ids", type_=ARRAY(BigInteger)),
            bindparam("b_statuses", type_=ARRAY(String)),
            bindparam("b_replies", type_=ARRAY(String)),
            bindparam("b_nexts", type_=ARRAY(DateTime(timezone=True))),
        )
        .table_valued("id", "status", "reply", "next_at")
        .render_derived(name="v")
    )
    values.update(
        status=v.c.status,
        last_reply=v.c.reply,
        next_attempt_at=v.c.next_at,
        sent_at=case((v.c.status == DeliveryStatus.sent.value, now), else_=table.c.sent_at),
    )
    return update(table).where(table.c.id == v.c.id, *owned).values(values)


def record_batches(
    dialect: str,
    table: Table,
    owner: str,
    results: Sequence[Result],
    now: datetime,
    policy: RetryPolicy,
) -> list[tuple[Update, list[dict[str, Any]]]]:
    """Return what records `results`: each statement with its parameter sets (executemany)."""
    if not results:
        return []
    groups = outcome_groups(results, now, policy)
    shared = {"b_owner": owner, "b_now": now}
    if dialect == POSTGRES:
        rows = [(status, row) for status, group in groups.items() for row in group]
        params = {
            **shared,
            "b_ids": [row["b_id"] for _, row in rows],
            "b_statuses": [status for status, _ in rows],
            "b_replies": [row["b_reply"] for _, row in rows],
            "b_nexts": [row["b_next"] for _, row in rows],
        }
        return [(record_statement(dialect, table.name), [params])]
    return [
        (
            record_statement(dialect, table.name, status == DeliveryStatus.sent),
            [{**shared, "b_status": status, **row} for row in group],
        )
        for status, group in groups.items()
    ]


def write_results(
    conn: Connection,
    table: Table,
    owner: str,
    results: Sequence[Result],
    now: datetime,
    policy: RetryPolicy,
) -> None:
    """Write results, fenced by the lease (see record_batches)."""
    for stmt, params in record_batches(conn.dialect.name, table, owner, results, now, policy):
        conn.execute(stmt, params if len(params) > 1 else params[0])


# Hand over ---------------------------------------------------------------------------------


@functools.cache
def hand_over_statement(dialect: str) -> Update:
    """Return the fenced UPDATE that marks rows as handed to SMTP on this database."""
    owned = fence(D, bindparam("owner", type_=String()))
    now = bindparam("now", type_=D.c.created_at.type)
    if dialect != POSTGRES:
        # One row per execution (executemany); the count says whether all were still ours.
        return update(D).where(D.c.id == bindparam("b_id"), *owned).values(handed_at=now)
    ids = any_(bindparam("ids", type_=ARRAY(BigInteger)))
    return update(D).where(D.c.id == ids, *owned).values(handed_at=now).returning(D.c.id)


@functools.cache
def commit_statement() -> Update:
    """Return PostgreSQL's whole commit as one statement: record (a CTE), then hand over.

    One statement is one round trip and, outside a transaction block, one transaction: the
    results and the marks land together or not at all. The two touch different rows (a row
    handed over now has no result yet), so neither sees the other's writes.
    """
    recorded = record_statement(POSTGRES, D.name).cte("recorded")
    return hand_over_statement(POSTGRES).add_cte(recorded)


def hand_over_params(
    dialect: str, owner: str, ids: Sequence[int], now: datetime
) -> list[dict[str, Any]]:
    """Return the parameters of hand_over_statement (one set per execution)."""
    if dialect != POSTGRES:
        return [{"b_id": i, "owner": owner, "now": now} for i in ids]
    return [{"ids": list(ids), "owner": owner, "now": now}]


def hand_over(conn: Connection, owner: str, ids: Sequence[int], now: datetime) -> set[int]:
    """Mark rows as handed over through SQLAlchemy; return the ids marked (only those may go)."""
    if not ids:
        return set()
    dialect = conn.dialect.name
    stmt = hand_over_statement(dialect)
    params = hand_over_params(dialect, owner, ids, now)
    if dialect == POSTGRES:
        return {row[0] for row in conn.execute(stmt, params[0])}
    if conn.execute(stmt, params).rowcount == len(ids):
        return set(ids)
    # Some leases moved on: mark again row by row (the same mark), keeping those that took.
    return {p["b_id"] for p in params if conn.execute(stmt, p).rowcount == 1}


# Running the same statements on a driver ---------------------------------------------------


class DriverStatement:
    """A statement compiled once by SQLAlchemy, run on a driver connection of that dialect.

    Values are processed as SQLAlchemy would bind them (each bind's type's bind processor),
    so timestamps are stored exactly as the pooled path stores them. Expanding parameters
    (an IN list) are refused: they are SQLAlchemy's to render, not ours to rewrite.
    """

    def __init__(self, stmt: Any, dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        if any(b.expanding for b in compiled.bind_names):
            raise ValueError("a driver statement cannot carry an expanding parameter")
        self.sql: str = compiled.string
        self.positional = bool(compiled.positional)
        defaults = compiled.params  # every rendered name, with its value (None when unbound)
        self.names: list[str] = list(compiled.positiontup or defaults)
        procs: dict[str, Callable[[Any], Any]] = {}
        for bind, name in compiled.bind_names.items():
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                procs[name] = proc
        self._procs = procs
        self._defaults = {name: self._bind(name, _plain(v)) for name, v in defaults.items()}
        # Per rendered name: its processor and default, in the order the driver wants them.
        self._plan = [(n, procs.get(n), self._defaults[n]) for n in self.names]
        # The last value each name was given, processed: the time is the same for every row
        # of a commit (the very same object), and formatting it is most of the work.
        self._last: dict[str, tuple[Any, Any]] = {}

    def _bind(self, name: str, value: Any) -> Any:
        proc = self._procs.get(name)
        return proc(value) if proc is not None and value is not None else value

    def params(self, values: dict[str, Any]) -> Any:
        """Return driver parameters for these named values (others keep their defaults)."""
        out: list[Any] = []
        last = self._last
        for name, proc, default in self._plan:
            if name not in values:
                out.append(default)
                continue
            value = values[name]
            if proc is not None and value is not None:
                seen = last.get(name)
                if seen is not None and seen[0] is value:
                    value = seen[1]
                else:
                    processed = proc(value)
                    last[name] = (value, processed)
                    value = processed
            out.append(value)
        return tuple(out) if self.positional else dict(zip(self.names, out, strict=True))


# Where the statements run ------------------------------------------------------------------


class CommitPath(Protocol):
    """Where the worker's plain commits go: record results and hand rows over, one transaction."""

    async def commit(
        self, results: Sequence[Result], handed: Sequence[int], now: datetime
    ) -> set[int] | None:
        """Record, hand over and commit; return the ids marked, or None to take the pooled path."""
        ...

    def close(self) -> None:
        """Give back connections (they open again on the next commit)."""
        ...


class PooledPath:
    """The commit on a SQLAlchemy connection of its own, on a thread (either database)."""

    def __init__(self, engine: Engine, owner: str, policy: RetryPolicy) -> None:
        self.owner = owner
        self.policy = policy
        self._engine = engine
        self._conn: Connection | None = None  # used by one commit at a time

    async def commit(
        self, results: Sequence[Result], handed: Sequence[int], now: datetime
    ) -> set[int] | None:
        """Record and hand over on a thread; return the ids marked."""
        return await asyncio.to_thread(self.run, results, handed, now)

    def run(self, results: Sequence[Result], handed: Sequence[int], now: datetime) -> set[int]:
        """Record and hand over in one transaction (on the calling thread)."""
        if self._conn is None or self._conn.closed:
            # Kept open, and no ORM session: its set-up cost more than the two statements.
            self._conn = self._engine.connect()
        try:
            with self._conn.begin():
                write_results(self._conn, D, self.owner, results, now, self.policy)
                return hand_over(self._conn, self.owner, handed, now)
        except Exception:
            self.close()  # a broken connection is not reused
            raise

    def close(self) -> None:
        """Give the connection back to the pool."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


class FirstOf:
    """A driver path that may step aside (None), with the pooled path behind it."""

    def __init__(self, first: CommitPath, then: PooledPath) -> None:
        self.first, self.then = first, then

    async def commit(
        self, results: Sequence[Result], handed: Sequence[int], now: datetime
    ) -> set[int] | None:
        """Commit on the first path, or on the pooled one when the first steps aside."""
        try:
            marked = await self.first.commit(results, handed, now)
        except Exception:
            self.first.close()
            raise
        if marked is not None:
            return marked
        return await self.then.commit(results, handed, now)

    def close(self) -> None:
        """Close both paths."""
        self.first.close()
        self.then.close()
