"""How fast a send goes: messages per second over the last minute, from the ledger."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Delivery

WINDOW_SECONDS = 60


def send_rate(
    session: Session, issue_id: int, now: datetime, started_at: datetime | None = None
) -> float:
    """Return the issue's sent messages per second over the last minute (or since it started)."""
    since = now - timedelta(seconds=WINDOW_SECONDS)
    count = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.issue_id == issue_id, Delivery.sent_at > since)
    )
    if not count:
        return 0.0
    # A send younger than the window divides by its age, not by a minute it has not lived.
    span = float(WINDOW_SECONDS)
    if started_at is not None and started_at > since:
        span = max((now - started_at).total_seconds(), 1.0)
    return int(count) / span
