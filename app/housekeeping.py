"""Periodic tidying: unconfirmed sign-ups, old rate-limit counters and provider event ids."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.bounces.service import forget_old_event_ids
from app.config import Settings
from app.ratelimit import prune
from app.subscribers.purge import purge_unconfirmed


def tidy(session: Session, settings: Settings, now: datetime) -> dict[str, int]:
    """Delete never-confirmed sign-ups past PENDING_PURGE_DAYS, stale counters, old event ids."""
    purged = purge_unconfirmed(session, timedelta(days=settings.pending_purge_days), now)
    return {
        "purged_pending": purged,
        "pruned_counters": prune(session, now),
        "forgotten_event_ids": forget_old_event_ids(session, now),
    }
