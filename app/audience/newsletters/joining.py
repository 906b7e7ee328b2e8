"""Asking for newsletters at sign-up, and confirming them (flush only)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.audience.newsletters.subscriptions import adopt_default
from app.models import Subscription, SubscriptionStatus


def request_subscriptions(
    session: Session, subscriber_id: int, newsletter_ids: list[int], now: datetime, *, fresh: bool
) -> bool:
    """Mark these newsletters pending for a reader (those not already active); True if any.

    A fresh reader takes exactly these; a known one keeps what they had (written down first).
    """
    if not fresh:
        adopt_default(session, subscriber_id, now)
    asked = False
    for newsletter_id in newsletter_ids:
        row = session.get(Subscription, (subscriber_id, newsletter_id), with_for_update=True)
        if row is None:
            session.add(
                Subscription(
                    subscriber_id=subscriber_id,
                    newsletter_id=newsletter_id,
                    status=SubscriptionStatus.pending,
                    created_at=now,
                    updated_at=now,
                )
            )
            asked = True
        elif row.status != SubscriptionStatus.active:
            row.status = SubscriptionStatus.pending
            row.updated_at = now
            asked = True
    session.flush()
    return asked


def drop_unasked(session: Session, subscriber_id: int, keep: list[int], now: datetime) -> None:
    """Mark every subscription but `keep` unsubscribed (a reader coming back after leaving)."""
    session.execute(
        update(Subscription)
        .where(Subscription.subscriber_id == subscriber_id, Subscription.newsletter_id.not_in(keep))
        .values(status=SubscriptionStatus.unsubscribed, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def confirm_pending(session: Session, subscriber_id: int, now: datetime) -> int:
    """Make a reader's pending subscriptions active (their confirmation covered them all)."""
    result = session.execute(
        update(Subscription)
        .where(
            Subscription.subscriber_id == subscriber_id,
            Subscription.status == SubscriptionStatus.pending,
        )
        .values(status=SubscriptionStatus.active, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
