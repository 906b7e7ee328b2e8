"""Remove sign-ups that were never confirmed (double opt-in keeps no unconsented data)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlalchemy.orm import Session

from app.models import Subscriber, SubscriberStatus


def purge_unconfirmed(session: Session, older_than: timedelta, now: datetime) -> int:
    """Delete pending subscribers never confirmed whose last confirmation mail is older than that.

    Someone who confirmed once and later re-signed up keeps their row (confirmed_at is set):
    their consent history is not ours to drop. Outbox rows go with them (FK CASCADE).
    """
    cutoff = now - older_than
    last_mail = func.coalesce(Subscriber.confirmation_sent_at, Subscriber.created_at)
    result = session.execute(
        delete(Subscriber).where(
            Subscriber.status == SubscriberStatus.pending,
            Subscriber.confirmed_at.is_(None),
            Subscriber.created_at < cutoff,
            last_mail < cutoff,
        )
    )
    session.flush()
    return int(getattr(result, "rowcount", 0) or 0)
