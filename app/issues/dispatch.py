"""The morning cron entry: start due issues, and optionally deliver them in-process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select

from app.context import Context
from app.db import session_scope
from app.issues import service as issue_service
from app.issues.schemas import SendStats
from app.models import Issue, IssueStatus, utcnow
from app.sends.store.sends import start_due_issues
from app.sends.worker import Worker

Progress = Callable[[dict[int, SendStats]], None]
PROGRESS_EVERY = 0.5  # seconds between progress snapshots while a stream runs


def dispatch(ctx: Context, now: datetime | None = None) -> list[int]:
    """Start every scheduled issue whose time has come, in one transaction; return their ids.

    Safe twice or concurrently: each start is a compare-and-set on the issue's status.
    """
    with session_scope(ctx.sessions) as session:
        return start_due_issues(session, now or utcnow(), issue_service.send_gate(ctx.renderer))


def _snapshot(ctx: Context, issue_ids: list[int] | None) -> tuple[list[int], dict[int, SendStats]]:
    """Return (ids still sending, stats of every watched issue)."""
    with session_scope(ctx.sessions) as session:
        if issue_ids is None:
            issue_ids = list(
                session.scalars(
                    # Held open (a sequence step) never leaves `sending`: not waited for.
                    select(Issue.id).where(
                        Issue.status == IssueStatus.sending, Issue.held_open.is_(False)
                    )
                )
            )
        rows = session.execute(select(Issue.id, Issue.status).where(Issue.id.in_(issue_ids)))
        # Not dict(rows): a Result has .keys(), so dict() would treat it as a mapping.
        statuses = {issue_id: status for issue_id, status in rows}
        stats = {i: issue_service.stats(session, i) for i in issue_ids}
    return [i for i in issue_ids if statuses.get(i) == IssueStatus.sending], stats


async def deliver_until_done(
    ctx: Context,
    worker: Worker,
    issue_ids: list[int] | None,
    on_progress: Progress | None = None,
) -> None:
    """Run a worker (app/delivery.py builds it) until the issues leave `sending`.

    By default the issues are every issue sending now.
    """
    if issue_ids is None:
        issue_ids, _ = await asyncio.to_thread(_snapshot, ctx, None)
    watched = issue_ids

    async def report() -> None:
        # A stream runs for many seconds: draw progress beside it, not only between streams.
        while on_progress is not None:
            _, stats = await asyncio.to_thread(_snapshot, ctx, watched)
            on_progress(stats)
            await asyncio.sleep(PROGRESS_EVERY)

    reporter = asyncio.create_task(report())
    try:
        while True:
            busy = await worker.run_once()
            sending, stats = await asyncio.to_thread(_snapshot, ctx, issue_ids)
            if on_progress is not None:
                on_progress(stats)
            if not sending:
                return
            if not busy:
                # Waiting on retries not yet due, or on rows another worker holds.
                await asyncio.sleep(ctx.settings.poll_interval_seconds)
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
        await worker.mailer.aclose()
