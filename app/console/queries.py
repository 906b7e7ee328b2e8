"""Read-only queries the console needs that no service offers yet (they change nothing)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from app.errors import InvalidInput
from app.models import (
    Delivery,
    DeliveryStatus,
    Issue,
    IssueStatus,
    Subscriber,
    SubscriberStatus,
    Suppression,
)
from app.sends.store.log import delivery_page
from app.subscribers.service import normalize_email, parse_cursor
from app.tokens import hash_secret

RECIPIENTS_PAGE = 50


@dataclass(frozen=True)
class RecipientRow:
    """One delivery of an issue as the results page lists it."""

    delivery_id: int
    subscriber_id: int | None
    email: str | None  # None once the subscriber was erased
    status: str
    attempts: int
    last_reply: str | None
    updated_at: datetime


def count_recipients(session: Session, now: datetime) -> int:
    """Count who a send started now would go to: active, not paused, not suppressed.

    The same conditions as the ledger's freeze_recipients, so the confirmation page states the
    number the send will freeze (give or take sign-ups in between).
    """
    suppressed = exists().where(Suppression.email_hash == Subscriber.email_hash)
    return int(
        session.scalar(
            select(func.count())
            .select_from(Subscriber)
            .where(
                Subscriber.status == SubscriberStatus.active,
                or_(Subscriber.paused_until.is_(None), Subscriber.paused_until <= now),
                ~suppressed,
            )
        )
        or 0
    )


def issues_in(session: Session, statuses: tuple[IssueStatus, ...], limit: int = 20) -> list[Issue]:
    """Return issues in these statuses: scheduled ones by send time, others newest first."""
    query = select(Issue).where(Issue.status.in_(statuses), Issue.automation.is_(None)).limit(limit)
    if statuses == (IssueStatus.scheduled,):
        query = query.order_by(Issue.send_at, Issue.id)
    else:
        query = query.order_by(
            func.coalesce(Issue.finished_at, Issue.started_at).desc(), Issue.id.desc()
        )
    return list(session.scalars(query))


def issue_recipients(
    session: Session,
    issue_id: int,
    *,
    status: str | None = None,
    q: str | None = None,
    after: str | None = None,
    limit: int = RECIPIENTS_PAGE,
) -> tuple[list[RecipientRow], str | None]:
    """Return one page of an issue's per-recipient log (the same pages as the JSON API)."""
    if status and status not in DeliveryStatus.__members__:
        raise InvalidInput(f"Unknown delivery status {status!r}.")
    page = delivery_page(
        session, issue_id=issue_id, status=status, q=q, after=parse_cursor(after), limit=limit
    )
    rows = [
        RecipientRow(
            r.id, r.subscriber_id, r.email, r.status, r.attempts, r.last_reply, r.updated_at
        )
        for r in page.items
    ]
    return rows, page.next_cursor


@dataclass(frozen=True)
class SubscriberDelivery:
    """One issue sent (or being sent) to a subscriber."""

    issue_id: int
    subject: str
    status: str
    attempts: int
    last_reply: str | None
    updated_at: datetime


def subscriber_deliveries(
    session: Session, subscriber_id: int, limit: int = 20
) -> list[SubscriberDelivery]:
    """Return a subscriber's latest deliveries, newest first, with the issue's subject."""
    rows = session.execute(
        select(
            Delivery.issue_id,
            Issue.subject,
            Delivery.status,
            Delivery.attempts,
            Delivery.last_reply,
            Delivery.updated_at,
        )
        .join(Issue, Issue.id == Delivery.issue_id)
        .where(Delivery.subscriber_id == subscriber_id)
        .order_by(Delivery.id.desc())
        .limit(limit)
    ).all()
    return [SubscriberDelivery(*row) for row in rows]


def find_suppression(session: Session, email: str) -> Suppression | None:
    """Return the suppression entry of an address (matched by its hash), or None."""
    digest = hash_secret(normalize_email(email))
    return session.scalars(select(Suppression).where(Suppression.email_hash == digest)).first()


def subscribers_csv(session: Session) -> str:
    """Return every subscriber as CSV: email, name, status, created_at, confirmed_at."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("email", "name", "status", "created_at", "confirmed_at"))
    stmt = select(Subscriber).order_by(Subscriber.id).execution_options(yield_per=1000)
    for row in session.scalars(stmt):
        writer.writerow(
            (
                row.email,
                _csv_safe(row.name),
                row.status,
                row.created_at.isoformat(),
                row.confirmed_at.isoformat() if row.confirmed_at else "",
            )
        )
    return buf.getvalue()


def _csv_safe(value: str) -> str:
    # A name typed by a reader opens in a spreadsheet: a leading = + - @ would run as a formula.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
