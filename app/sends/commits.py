"""Commit routing: where a stream's results and hand-over marks are written, and how.

Plain commits (results and hand-overs only) take the database's own CommitPath
(store/paths.py: SQLite's driver path, or PostgreSQL's one-statement commit, both on the
loop); a commit that must suppress or undo bounces runs in a session on a thread, so the
hooks above the core act in the same transaction.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from app.context import Context
from app.db import session_scope
from app.models import utcnow
from app.sends.hooks import SendHooks
from app.sends.store import lease, ledger, sends
from app.sends.store.ledger import Result, RetryPolicy
from app.sends.store.paths import commit_path

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
        # Plain commits (results, hand-overs) take the database's own path (store/paths.py).
        self.paths = commit_path(ctx.engine, owner, policy)

    def close(self) -> None:
        """Close the connections kept for commits (they reopen on the next commit)."""
        self.paths.close()

    async def commit(
        self, results: list[Result], handed: list[int], undo_bounces: set[int] | frozenset[int]
    ) -> set[int]:
        """Record results and hand the next group over, in one transaction.

        Returns the ids actually handed over: only those may go on the wire.

        For sends in `undo_bounces` (a relay refused everyone alike), the 5.1.x failures and
        their suppressions are undone in the same transaction, after the results are written.
        """
        now = utcnow()
        if not undo_bounces and not any(r.suppress for r in results):
            marked = await self.paths.commit(results, handed, now)
            if marked is not None:
                return marked
        return await asyncio.to_thread(self._commit, results, handed, undo_bounces, now)

    def _commit(
        self,
        results: list[Result],
        handed: list[int],
        undo_bounces: set[int] | frozenset[int],
        now: datetime,
    ) -> set[int]:
        # Hard bounces suppress addresses (and tell webhooks); a burst undoes them: a session.
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
