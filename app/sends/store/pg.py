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

It runs on a thread of its own, fed by a queue, the reply handed back to the loop with
`call_soon_threadsafe`: `asyncio.to_thread` per commit cost a thread pool's bookkeeping each
time. The values go as PostgreSQL text literals (arrays included) that the statement's own
casts read: psycopg's adaptation of lists and timestamps was most of the commit's Python.
On psycopg's async connection, on the event loop, a commit used less CPU but took longer (the
busy loop noticed the reply late): in paired runs the rate was lower every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import Engine

from app.sends.policy import RetryPolicy
from app.sends.store.commit import DriverStatement, commit_statement, outcome_row
from app.sends.store.rows import Result

_Job = tuple[dict[str, Any], asyncio.AbstractEventLoop, "asyncio.Future[set[int]]"]


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


def _closed(conn: psycopg.Connection[Any] | None) -> None:
    if conn is not None:
        with contextlib.suppress(Exception):
            conn.close()


def _settle(fut: asyncio.Future[set[int]], value: set[int] | BaseException) -> None:
    if fut.done():  # the commit's caller gave up waiting (cancelled)
        return
    if isinstance(value, BaseException):
        fut.set_exception(value)
    else:
        fut.set_result(value)


class PostgresPath:
    """Records results and hands rows over in one statement, on a commit thread of its own."""

    def __init__(self, engine: Engine, owner: str, policy: RetryPolicy) -> None:
        self.owner = owner
        self.policy = policy
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        self._connect: tuple[list[Any], dict[str, Any]] = (list(args), dict(kwargs))
        stmt = DriverStatement(commit_statement(), engine.dialect)
        self._sql = stmt.sql
        # What every commit shares (the owner, the statuses the statement compares with),
        # bound as SQLAlchemy binds them; each commit adds its time, ids and results.
        self._fixed: dict[str, Any] = stmt.params({"b_owner": owner, "owner": owner})
        # The commit thread and its queue (each thread has its own, and its own connection).
        self._thread: threading.Thread | None = None
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()

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
        params = {
            **self._fixed,
            "now": stamp,
            "b_now": stamp,
            "b_ids": int_array(ids),
            "b_statuses": text_array(statuses),
            "b_replies": text_array(replies),
            "b_nexts": text_array(nexts),
            "ids": int_array(handed),
        }
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[set[int]] = loop.create_future()
        if self._thread is None:
            self._jobs = queue.SimpleQueue()
            self._thread = threading.Thread(
                target=self._serve, name="pg-commit", args=(self._jobs,), daemon=True
            )
            self._thread.start()
        self._jobs.put((params, loop, fut))
        return await fut

    def _serve(self, jobs: queue.SimpleQueue[_Job | None]) -> None:
        conn: psycopg.Connection[Any] | None = None
        try:
            while (job := jobs.get()) is not None:
                params, loop, fut = job
                value: set[int] | BaseException
                try:
                    if conn is None:
                        args, kwargs = self._connect
                        conn = psycopg.Connection.connect(*args, autocommit=True, **kwargs)
                        # This connection runs only the commit statement, prepared: plan it
                        # once (see the module's docstring).
                        conn.execute("SET plan_cache_mode = force_generic_plan")
                    cur = conn.execute(self._sql, params, prepare=True)
                    value = {row[0] for row in cur.fetchall()}
                except BaseException as exc:  # handed to the waiting commit, raised there
                    value = exc
                    _closed(conn)  # a broken connection is not reused
                    conn = None
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                    loop.call_soon_threadsafe(_settle, fut, value)
        finally:
            _closed(conn)

    def close(self) -> None:
        """Stop the commit thread and close its connection (both start again on a commit)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._jobs.put(None)  # after any commit already queued
        if thread is not threading.current_thread():
            thread.join(timeout=10)
