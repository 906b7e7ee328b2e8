"""The per-recipient delivery log: keyset pages over one issue's or one reader's deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Delivery, Subscriber

MAX_LIMIT = 200


@dataclass(frozen=True)
class DeliveryRow:
    """One delivery as the log shows it: who, what happened, the relay's last word."""

    id: int
    issue_id: int
    subscriber_id: int | None
    email: str | None
    status: str
    attempts: int
    last_reply: str | None
    updated_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class DeliveryPage:
    """A page of the log and the cursor of the next one (None on the last page)."""

    items: list[DeliveryRow]
    next_cursor: str | None


def delivery_page(
    session: Session,
    *,
    issue_id: int | None = None,
    subscriber_id: int | None = None,
    status: str | None = None,
    q: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> DeliveryPage:
    """Return deliveries in id order after `after`, filtered; each page costs what page 1 does.

    Keyset paging on (issue_id[, status], id) or (subscriber_id, id) indexes: no OFFSET, so
    page 500 reads `limit` rows like page 1.
    """
    limit = max(1, min(limit, MAX_LIMIT))
    stmt = select(
        Delivery.id,
        Delivery.issue_id,
        Delivery.subscriber_id,
        Subscriber.email,
        Delivery.status,
        Delivery.attempts,
        Delivery.last_reply,
        Delivery.updated_at,
        Delivery.sent_at,
    ).outerjoin(Subscriber, Subscriber.id == Delivery.subscriber_id)
    if issue_id is not None:
        stmt = stmt.where(Delivery.issue_id == issue_id)
    if subscriber_id is not None:
        stmt = stmt.where(Delivery.subscriber_id == subscriber_id)
    if status:
        stmt = stmt.where(Delivery.status == status)
    if q:
        stmt = stmt.where(Subscriber.email.contains(q.strip().lower(), autoescape=True))
    if after is not None:
        stmt = stmt.where(Delivery.id > after)
    rows = session.execute(stmt.order_by(Delivery.id).limit(limit + 1)).all()
    items = [DeliveryRow(*r) for r in rows[:limit]]
    more = len(rows) > limit
    return DeliveryPage(items, str(items[-1].id) if more and items else None)
