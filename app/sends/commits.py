"""Commit routing: where a stream's results and hand-over marks are written, and how.

Moved from worker.py as it was (issue 18, item 4). SQLite's plain commits run on the loop, on
the driver (store/hot.py); PostgreSQL's, and any commit that must suppress or undo bounces, on
a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from sqlalchemy.engine import Connection

from app.context import Context
from app.db import is_postgres as is_postgres_engine
from app.db import session_scope
from app.models import utcnow
from app.sends.hooks import SendHooks
from app.sends.store import lease, ledger, sends
from app.sends.store.hot import SQLiteHotPath
from app.sends.store.ledger import Result, RetryPolicy
from app.sends.store.rows import D

log = logging.getLogger("morningpost.delivery")


class CommitRouter:
    """Record results and hand rows over, on the cheapest path the database allows."""

    def __init__(
        self, ctx: Context, owner: str, policy: RetryPolicy, hooks: SendHooks | None = None
    ) -> None:
        self.ctx = ctx
        self.owner = owner
        self.policy = policy
        # What becomes of bounces (suppressions) is the layers above's, handed in.
        self.hooks = hooks or SendHooks()
        self._commit_conn: Connection | None = None  # used by one commit at a time
        # SQLite's commits run on the loop, on the driver (store/hot.py); PostgreSQL's on a
        # thread, since each one waits for the server.
        self._hot: SQLiteHotPath | None = None
        if not is_postgres_engine(ctx.engine):
            self._hot = SQLiteHotPath(ctx.engine, self.owner, self.policy)

    def close(self) -> None:
        """Close the connections kept for commits (they reopen on the next commit)."""
        self._close_commit_connection()

    async def commit(
        self, results: list[Result], handed: list[int], undo_bounces: set[int] | frozenset[int]
    ) -> set[int]:
        """Record results and hand the next group over, in one transaction.

        Returns the ids actually handed over: only those may go on the wire.

        For sends in `undo_bounces` (a relay refused everyone alike), the 5.1.x failures and
        their suppressions are undone in the same transaction, after the results are written.
        """
        now = utcnow()
        plain = not undo_bounces and not any(r.suppress for r in results)
        if plain and self._hot is not None:
            # SQLite, every few messages: on the loop, unless another writer holds the lock.
            try:
                marked = self._hot.run(results, handed, now)
            except Exception:
                self._hot.close()
                raise
            if marked is not None:
                return marked
        return await asyncio.to_thread(self._commit, results, handed, undo_bounces, now, plain)

    def _commit(
        self,
        results: list[Result],
        handed: list[int],
        undo_bounces: set[int] | frozenset[int],
        now: datetime,
        plain: bool,
    ) -> set[int]:
        if plain:
            # The common case on PostgreSQL: a connection of its own, kept open, and no ORM
            # session (its set-up and bookkeeping cost more than the two statements).
            conn = self._commit_connection()
            try:
                with conn.begin():
                    ledger.record_rows(conn, D, self.owner, results, now, self.policy)
                    return lease.hand_over(conn, self.owner, handed, now)
            except Exception:
                self._close_commit_connection()  # a broken connection is not reused
                raise
        with session_scope(self.ctx.sessions) as ses:
            bounced = ledger.record_results(ses, self.owner, results, now, policy=self.policy)
            if bounced:  # suppressed in this very transaction, with the results
                self.hooks.bounced(ses, bounced, now)
            marked = lease.hand_over(ses, self.owner, handed, now)
            for issue_id in sorted(undo_bounces):
                requeued = sends.requeue_relay_bounces(ses, issue_id, now)
                lifted = self.hooks.bounces_undone(ses, issue_id, now)
                if requeued or lifted:
                    log.warning(
                        "issue %d: the relay refused readers alike; %d deliveries queued again, "
                        "%d suppressions lifted",
                        issue_id,
                        requeued,
                        lifted,
                    )
        return marked

    def _commit_connection(self) -> Connection:
        if self._commit_conn is None or self._commit_conn.closed:
            self._commit_conn = self.ctx.engine.connect()
        return self._commit_conn

    def _close_commit_connection(self) -> None:
        if self._hot is not None:
            self._hot.close()
        conn, self._commit_conn = self._commit_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
