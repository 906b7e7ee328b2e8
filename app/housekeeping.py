"""Periodic tidying: unconfirmed sign-ups and old rate-limit counters."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.config import Settings
from app.ratelimit import prune
from app.subscribers.purge import purge_unconfirmed


def tidy(session: Session, settings: Settings, now: datetime) -> dict[str, int]:
    """Delete never-confirmed sign-ups past PENDING_PURGE_DAYS and stale counters."""
    purged = purge_unconfirmed(session, timedelta(days=settings.pending_purge_days), now)
    return {"purged_pending": purged, "pruned_counters": prune(session, now)}
