"""The ledger as one worker's streams see it (the LedgerPort of ports.py).

Claims, deferrals, releases, status reads, renewals and pauses each run in a transaction of
their own on a thread; results and hand-overs go through the worker's commit (commits.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import OnThread
from app.errors import DomainError
from app.models import Issue, IssueStatus, utcnow
from app.sends.hooks import ObserveClaim, OnBouncesUndone, SendHooks, unobserved_claim
from app.sends.ports import Commit
from app.sends.reaper import Reaper
from app.sends.store import lease, ledger, sends
from app.sends.store.rows import Claim

log = logging.getLogger("morningpost.delivery")


class StreamLedger:
    """Claim, defer, release, renew and pause under one worker's lease."""

    def __init__(
        self,
        settings: Settings,
        owner: str,
        db: OnThread,
        *,
        commit: Commit,
        reaper: Reaper,
        clock: Callable[[], datetime],
        observe_claim: ObserveClaim = unobserved_claim,
        bounces_undone: OnBouncesUndone | None = None,
    ) -> None:
        self.settings = settings
        self.owner = owner
        self.db = db
        self.commit = commit  # the worker's, so one place decides how results are written
        self.reaper = reaper
        self.clock = clock
        self.observe_claim = observe_claim
        # Lifts the suppressions a relay burst's replies wrote (a hook; none in a bare worker).
        self.bounces_undone = bounces_undone or SendHooks().bounces_undone
        self.domain = settings.sender.domain

    def claim_limit(self) -> int:
        """Return how many rows one claim may take."""
        limit = self.settings.batch_size
        rate = self.settings.rate_per_second
        if rate > 0:
            # A batch waiting in memory should not take longer than its lease to send.
            limit = min(limit, max(1, int(rate * self.settings.lease_seconds / 2)))
        return limit

    async def claim(self, room: int) -> list[Claim]:
        """Lease up to `room` due deliveries (fewer when the rate or the batch size says so)."""
        limit = min(self.claim_limit(), room)
        started = time.perf_counter()
        claims = await self.db(
            lambda s: ledger.claim_batch(
                s,
                self.owner,
                limit,
                utcnow(),
                self.settings.lease_seconds,
                domain=self.domain,
                due_at=self.clock(),
            )
        )
        self.observe_claim(started, len(claims))
        return claims

    async def defer(self, rows: list[tuple[int, datetime]], why: str) -> None:
        """Give claimed rows back, due again at the given times, without counting an attempt."""
        await self.db(lambda s: lease.defer(s, self.owner, rows, utcnow(), why))

    async def release(self, ids: list[int]) -> None:
        """Give claimed rows back to the queue at once, uncounted."""
        await self.db(lambda s: lease.release(s, self.owner, ids))

    async def statuses(self, issue_ids: set[int]) -> list[tuple[int, str]]:
        """Return (id, status) of the given issues."""
        return await self.db(partial(_statuses, issue_ids=issue_ids))

    async def renew(self, ids: list[int]) -> None:
        """Extend the leases of rows in hand, and expire those of workers that died."""
        await self.reaper.renew(ids)

    async def pause(self, issue_id: int, reason: str, undo_bounces: bool = False) -> bool:
        """Pause a send, saying why; return False when it was no longer sending.

        With `undo_bounces` (a relay burst), the 5.1.x failures recorded so far go back to the
        queue and their suppressions are lifted in the same transaction: a crash after the
        pause leaves none.
        """

        def flip(ses: Session) -> None:
            sends.flip_status(ses, issue_id, IssueStatus.sending, IssueStatus.paused, reason)
            if undo_bounces:
                now = utcnow()
                sends.requeue_relay_bounces(ses, issue_id, now)
                self.bounces_undone(ses, issue_id, now)

        try:
            await self.db(flip)
        except DomainError:
            return False
        return True

    async def note_alert(self, issue_id: int, text: str) -> None:
        """Show a relay problem on the send (stats `alerts`) while it lasts."""
        try:
            await self.db(lambda s: sends.set_alert(s, issue_id, text, utcnow()))
        except Exception:
            log.exception("could not record the alert of issue %d", issue_id)


def _statuses(session: Session, issue_ids: set[int]) -> list[tuple[int, str]]:
    """Return (id, status) of the given issues."""
    rows = session.execute(select(Issue.id, Issue.status).where(Issue.id.in_(issue_ids)))
    return [(i, status) for i, status in rows]
