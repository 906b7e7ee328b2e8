"""Who reads a newsletter: a condition on Subscriber, the default one's implicit readers too."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, or_

from app.models import DEFAULT_NEWSLETTER_ID, Subscriber, Subscription, SubscriptionStatus


def readers_of(newsletter_id: int) -> ColumnElement[bool]:
    """Return the condition on Subscriber of taking this newsletter (actively).

    A reader with no subscription at all came in by a path older than newsletters (or one
    that names none: an import, an editor's add) and takes the default newsletter.
    """
    active = exists().where(
        Subscription.subscriber_id == Subscriber.id,
        Subscription.newsletter_id == newsletter_id,
        Subscription.status == SubscriptionStatus.active,
    )
    if newsletter_id != DEFAULT_NEWSLETTER_ID:
        return active
    return or_(active, ~exists().where(Subscription.subscriber_id == Subscriber.id))


def audience_and(newsletter_id: int, extra: ColumnElement[bool] | None) -> ColumnElement[bool]:
    """Return the readers of a newsletter, narrowed by `extra` (a segment's condition)."""
    base = readers_of(newsletter_id)
    return base if extra is None else and_(base, extra)
