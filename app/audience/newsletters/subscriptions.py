"""A reader's standing with each newsletter: read, set, leave one, choose (flush only)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.models import (
    DEFAULT_NEWSLETTER_ID,
    Delivery,
    DeliveryStatus,
    Issue,
    IssueStatus,
    Newsletter,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)

LIVE_SENDS = (IssueStatus.scheduled, IssueStatus.sending, IssueStatus.paused)


def subscriptions_of(session: Session, subscriber_id: int) -> dict[str, str]:
    """Return {slug: status} of every newsletter a reader has a standing with."""
    rows = session.execute(
        select(Newsletter.slug, Subscription.status)
        .join(Subscription, Subscription.newsletter_id == Newsletter.id)
        .where(Subscription.subscriber_id == subscriber_id)
        .order_by(Newsletter.id)
    ).all()
    found = {slug: str(status) for slug, status in rows}
    if not found:
        default = session.get(Newsletter, DEFAULT_NEWSLETTER_ID)
        if default is not None:
            status = session.scalar(select(Subscriber.status).where(Subscriber.id == subscriber_id))
            found[default.slug] = "active" if status == "active" else str(status or "")
    return found


def set_subscription(
    session: Session,
    subscriber_id: int,
    newsletter_id: int,
    status: SubscriptionStatus,
    now: datetime,
) -> None:
    """Record a reader's standing with one newsletter (insert or update)."""
    adopt_default(session, subscriber_id, now)
    row = session.get(Subscription, (subscriber_id, newsletter_id), with_for_update=True)
    if row is None:
        session.add(
            Subscription(
                subscriber_id=subscriber_id,
                newsletter_id=newsletter_id,
                status=status,
                created_at=now,
                updated_at=now,
            )
        )
    elif row.status != status:
        row.status = status
        row.updated_at = now
    session.flush()


def adopt_default(session: Session, subscriber_id: int, now: datetime) -> None:
    """Write down the default newsletter a reader without subscriptions takes implicitly.

    Before their first explicit subscription, so joining B does not silently drop A.
    """
    if (
        session.scalar(
            select(Subscription.newsletter_id).where(Subscription.subscriber_id == subscriber_id)
        )
        is not None
    ):
        return
    found = session.execute(
        select(Subscriber.status, Subscriber.confirmed_at).where(Subscriber.id == subscriber_id)
    ).first()
    if found is None:
        raise NotFound("No such subscriber.")
    status, confirmed_at = found
    standing = {"active": SubscriptionStatus.active, "pending": SubscriptionStatus.pending}.get(
        str(status), SubscriptionStatus.unsubscribed
    )
    # An active reader has taken it since confirming: a sequence's "confirmed" trigger reads
    # this moment, and writing it down now must not look like a fresh confirmation.
    since = confirmed_at if standing == SubscriptionStatus.active and confirmed_at else now
    session.add(
        Subscription(
            subscriber_id=subscriber_id,
            newsletter_id=DEFAULT_NEWSLETTER_ID,
            status=standing,
            created_at=since,
            updated_at=since,
        )
    )
    session.flush()


def leave(session: Session, subscriber_id: int, newsletter_id: int, now: datetime) -> int:
    """Unsubscribe a reader from one newsletter; return the queued copies this cancelled.

    In the same transaction, their deliveries of that newsletter's live sends not yet handed
    out are cancelled: leaving during a send means no further copy of it.
    """
    set_subscription(session, subscriber_id, newsletter_id, SubscriptionStatus.unsubscribed, now)
    live = select(Issue.id).where(
        Issue.newsletter_id == newsletter_id, Issue.status.in_(LIVE_SENDS)
    )
    result = session.execute(
        update(Delivery)
        .where(
            Delivery.subscriber_id == subscriber_id,
            Delivery.issue_id.in_(live),
            Delivery.status.in_([DeliveryStatus.pending, DeliveryStatus.retry]),
        )
        .values(status=DeliveryStatus.cancelled, last_reply="left the newsletter", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def choose(session: Session, subscriber_id: int, chosen: set[int], now: datetime) -> None:
    """Make a reader take exactly the `chosen` newsletters (their preferences page's boxes).

    The page is reached by the reader's own signed link, so a ticked box is consent enough.
    A newsletter still waiting for its confirmation shows unticked: leaving its box unticked
    keeps it waiting (the link in the confirmation email still starts it), it does not cancel it.
    """
    standing = {
        row.newsletter_id: row.status
        for row in session.scalars(
            select(Subscription).where(Subscription.subscriber_id == subscriber_id)
        )
    }
    for newsletter_id in session.scalars(select(Newsletter.id)):
        now_taking = standing.get(newsletter_id)
        if newsletter_id == DEFAULT_NEWSLETTER_ID and not standing:
            now_taking = SubscriptionStatus.active  # implicitly, see readers_of
        if newsletter_id in chosen and now_taking != SubscriptionStatus.active:
            set_subscription(session, subscriber_id, newsletter_id, SubscriptionStatus.active, now)
        elif newsletter_id not in chosen and now_taking == SubscriptionStatus.active:
            leave(session, subscriber_id, newsletter_id, now)


def still_taking(session: Session, subscriber_id: int) -> bool:
    """Tell whether a reader still takes (or waits to take) any newsletter."""
    return (
        session.scalar(
            select(Subscription.newsletter_id)
            .where(
                Subscription.subscriber_id == subscriber_id,
                Subscription.status.in_([SubscriptionStatus.active, SubscriptionStatus.pending]),
            )
            .limit(1)
        )
        is not None
    )
