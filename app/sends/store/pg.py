"""The worker's commits on PostgreSQL: one statement on a psycopg connection of its own.

Every few messages the worker records results and hands the next group over. Through a
SQLAlchemy session this was four round trips (BEGIN, record, hand over, COMMIT) plus
SQLAlchemy's per-statement work. Here it is one statement (commit_statement: the results in a
CTE, then the hand-over), so one round trip and, in autocommit, one transaction, prepared on
the server, with the very statement the pooled path's constructs compile to.
`synchronous_commit` stays as the server has it: a hand-over must be on disk before its
content goes.

The connection plans that statement once (`plan_cache_mode = force_generic_plan`). Left to
itself, PostgreSQL kept re-planning it on every execution with the values in hand (a custom
plan, judged cheaper), and the plan it chose walked the `status = 'sending'` index over every
row in hand. bench/pg_commit.py: 3.9 ms a commit before, 0.5 after (3.1 and 0.4 with the
database on tmpfs, so it was the planning, not the disk). The generic plan reaches each row by
its primary key, at any size of send or batch: the only plan this statement needs, for a
handful of ids each time.

It runs on the event loop, on libpq's non-blocking interface: the statement is sent, and the
loop reads the reply when its socket is readable. On a commit thread (the way before) each
commit also paid two hand-offs between threads (a queue there, call_soon_threadsafe back: 0.2
ms on average in a stream) and twice the CPU (bench/pg_commit.py: 148 -> 75 us a commit). In a
stream, commits went from 0.8-1.0 to 0.6-0.7 ms, and a stream's pace is about window / (2 x
commit time). psycopg's own async connection, tried in an earlier pass (before the plan was
fixed), was slower in paired runs; this path adds nothing to libpq's calls but the reply's
parsing.
The values go as PostgreSQL text literals (arrays included) that the statement's own casts
read: psycopg's adaptation of lists and timestamps was most of the commit's Python.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy import Engine

from app.sends.policy import RetryPolicy
from app.sends.store.commit import DriverStatement, commit_statement, outcome_row
from app.sends.store.rows import Result

_NAME = b"morningpost_commit"
_BIND = re.compile(r"%\((\w+)\)s")


def text_array(items: Sequence[str | None]) -> str:
    """Return a PostgreSQL array literal of these strings (None is NULL), quoted as needed."""
    quoted = (
        "NULL" if s is None else '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
        for s in items
    )
    return "{" + ",".join(quoted) + "}"


def int_array(items: Sequence[int]) -> str:
    """Return a PostgreSQL array literal of these integers."""
    return "{" + ",".join(map(str, items)) + "}"


def numbered(sql: str) -> tuple[bytes, list[str]]:
    """Turn a statement with %(name)s binds into libpq's $n form; return it and the names."""
    names: list[str] = []

    def number(m: re.Match[str]) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    return _BIND.sub(number, sql).replace("%%", "%").encode(), names


class PostgresPath:
    """Records results and hands rows over in one statement, read back on the event loop."""

    def __init__(self, engine: Engine, owner: str, policy: RetryPolicy) -> None:
        self.owner = owner
        self.policy = policy
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        self._connect: tuple[list[Any], dict[str, Any]] = (list(args), dict(kwargs))
        stmt = DriverStatement(commit_statement(), engine.dialect)
        self._sql, self._names = numbered(stmt.sql)
        # What every commit shares (the owner, the statuses the statement compares with),
        # bound as SQLAlchemy binds them; each commit adds its time, ids and results.
        self._fixed: dict[str, Any] = stmt.params({"b_owner": owner, "owner": owner})
        self._conn: psycopg.Connection[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        # The statement on the wire, if any: settled when its reply is read, even if the
        # commit that sent it was cancelled (the connection is free again only then).
        self._pending: asyncio.Future[set[int]] | None = None
        self._rows: set[int] = set()
        self._error: str | None = None
        self._fd = -1

    async def commit(
        self, results: Sequence[Result], handed: Sequence[int], now: datetime
    ) -> set[int] | None:
        """Record and hand over in one statement, one round trip; return the ids marked."""
        ids: list[int] = []
        statuses: list[str] = []
        replies: list[str] = []
        nexts: list[str | None] = []
        for r in results:
            status, reply, next_at = outcome_row(r, now, self.policy)
            ids.append(r.row_id)
            statuses.append(status)
            replies.append(reply)
            nexts.append(None if next_at is None else next_at.astimezone(UTC).isoformat())
        stamp = now.astimezone(UTC).isoformat()  # exactly the instant SQLAlchemy would bind
        values = {
            **self._fixed,
            "now": stamp,
            "b_now": stamp,
            "b_ids": int_array(ids),
            "b_statuses": text_array(statuses),
            "b_replies": text_array(replies),
            "b_nexts": text_array(nexts),
            "ids": int_array(handed),
        }
        params = [None if (v := values[n]) is None else str(v).encode() for n in self._names]
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a connection's reader belongs to one loop
            self.close()
            self._loop, self._lock = loop, asyncio.Lock()
        assert self._lock is not None
        async with self._lock:
            if self._pending is not None:  # a cancelled commit's reply: read it first
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._pending)
            if self._conn is None:
                self._conn = await asyncio.to_thread(self._open)
            try:
                pending = self._send(loop, self._conn.pgconn, params)
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                # The reply is read all the same (the next commit waits for it); an error in
                # it has no one to raise to.
                pending.add_done_callback(_retrieved)
                raise
            except Exception:
                self.close()  # a broken connection is not reused
                raise

    def _open(self) -> psycopg.Connection[Any]:
        args, kwargs = self._connect
        conn = psycopg.Connection.connect(*args, autocommit=True, **kwargs)
        try:
            # This connection runs only the commit statement, prepared: plan it once (see
            # the module's docstring).
            conn.execute("SET plan_cache_mode = force_generic_plan")
            res = conn.pgconn.prepare(_NAME, self._sql)
            if res.status != pq.ExecStatus.COMMAND_OK:
                raise psycopg.OperationalError(_message(res))
            conn.pgconn.nonblocking = 1
        except BaseException:
            conn.close()
            raise
        return conn

    def _send(
        self, loop: asyncio.AbstractEventLoop, pgconn: pq.abc.PGconn, params: list[bytes | None]
    ) -> asyncio.Future[set[int]]:
        # Its number, kept: once libpq drops a broken connection, pgconn.socket raises, and
        # a reader left registered on the number would starve the next connection's socket.
        fd = pgconn.socket
        pgconn.send_query_prepared(_NAME, params)
        more = pgconn.flush()
        # Only once it is on its way: a send that raised leaves nothing to wait for.
        pending: asyncio.Future[set[int]] = loop.create_future()
        self._pending, self._rows, self._error, self._fd = pending, set(), None, fd
        if more:  # not all of it went at once: send the rest when writable
            loop.add_writer(fd, self._on_writable, pgconn)
        loop.add_reader(fd, self._on_readable, pgconn)
        return pending

    def _on_writable(self, pgconn: pq.abc.PGconn) -> None:
        try:
            more = pgconn.flush()
        except Exception as exc:
            self._settle(pgconn, exc)
            return
        if not more and self._loop is not None:
            self._loop.remove_writer(self._fd)

    def _on_readable(self, pgconn: pq.abc.PGconn) -> None:
        try:
            pgconn.consume_input()
            while not pgconn.is_busy():
                res = pgconn.get_result()
                if res is None:  # the statement is done (and, in autocommit, committed)
                    error = self._error
                    self._settle(pgconn, psycopg.DatabaseError(error) if error else self._rows)
                    return
                if res.status == pq.ExecStatus.TUPLES_OK:
                    self._rows.update(int(res.get_value(i, 0) or 0) for i in range(res.ntuples))
                else:
                    self._error = self._error or _message(res)
        except Exception as exc:  # the connection broke
            self._settle(pgconn, exc)

    def _settle(self, pgconn: pq.abc.PGconn, value: set[int] | BaseException) -> None:
        loop, pending = self._loop, self._pending
        self._pending = None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self._fd)
            loop.remove_writer(self._fd)
        if pending is None or pending.done():
            return
        with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
            if isinstance(value, BaseException):
                pending.set_exception(value)
            else:
                pending.set_result(value)

    def close(self) -> None:
        """Close the connection (it opens again on the next commit)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._pending is not None:
            self._settle(conn.pgconn, psycopg.OperationalError("commit connection closed"))
        with contextlib.suppress(Exception):
            conn.close()


def _retrieved(fut: asyncio.Future[set[int]]) -> None:
    if not fut.cancelled():
        fut.exception()  # marks it retrieved: asyncio would log it as never seen


def _message(res: pq.abc.PGresult) -> str:
    return (res.error_message or b"").decode(errors="replace").strip() or str(res.status)
