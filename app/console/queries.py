"""Read-only queries the console needs that no service offers yet (they change nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from app.addresses import normalize_email
from app.audience.segments import send_audience
from app.errors import InvalidInput
from app.models import (
    Delivery,
    DeliveryStatus,
    Issue,
    IssueStatus,
    Subscriber,
    Suppression,
)
from app.sends.store.ledger import count_send_recipients
from app.sends.store.log import delivery_page
from app.subscribers.service import parse_cursor
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


def count_recipients(
    session: Session,
    now: datetime,
    newsletter_id: int | None = None,
    audience_filter: str | None = None,
) -> int:
    """Count who a send started now would freeze (of a newsletter, matching a filter).

    The ledger's own clause (send_recipients) ANDed with the issues layer's audience, so the
    number shown is the one a send started now freezes.
    """
    return count_send_recipients(session, now, send_audience(audience_filter, now, newsletter_id))


def issues_in(
    session: Session,
    statuses: tuple[IssueStatus, ...],
    limit: int = 20,
    newsletter_id: int | None = None,
) -> list[Issue]:
    """Return issues in these statuses (of a newsletter): scheduled ones by send time, others
    newest first."""
    query = select(Issue).where(Issue.status.in_(statuses), Issue.automation.is_(None)).limit(limit)
    if newsletter_id is not None:
        query = query.where(Issue.newsletter_id == newsletter_id)
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


def _csv_safe(value: str) -> str:
    # A name typed by a reader opens in a spreadsheet: a leading = + - @ would run as a formula.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


ISSUES_PAGE = 200


def find_issues(
    session: Session,
    *,
    q: str = "",
    status: str = "",
    limit: int = ISSUES_PAGE,
    newsletter_id: int | None = None,
) -> list[Issue]:
    """Return issues newest first, matching words of the subject or slug, a status and a
    newsletter."""
    # An automation's carriers (a sequence step, an A/B variant) are not editors' issues.
    query = select(Issue).where(Issue.automation.is_(None)).order_by(Issue.id.desc()).limit(limit)
    if newsletter_id is not None:
        query = query.where(Issue.newsletter_id == newsletter_id)
    if status:
        if status not in IssueStatus.__members__:
            raise InvalidInput(f"Unknown status {status!r}.")
        query = query.where(Issue.status == status)
    for word in q.split()[:8]:
        query = query.where(
            or_(
                func.lower(Issue.subject).contains(word.lower(), autoescape=True),
                Issue.slug.contains(word.lower(), autoescape=True),
            )
        )
    return list(session.scalars(query))


SUBSCRIBER_SORTS = {
    "newest": (Subscriber.id.desc(),),
    "oldest": (Subscriber.id.asc(),),
    "email": (Subscriber.email.asc(), Subscriber.id.asc()),
    "name": (func.lower(Subscriber.name).asc(), Subscriber.email.asc()),
}


@dataclass(frozen=True)
class SubscriberTable:
    """One sorted page of subscribers and how many match in all."""

    rows: list[Subscriber]
    total: int
    page: int
    pages: int


def subscriber_table(
    session: Session, *, status: str, q: str, sort: str, page: int, per: int = 50
) -> SubscriberTable:
    """Return one page of subscribers in the chosen order, with the count of all that match."""
    conditions: list[ColumnElement[bool]] = []
    if status:
        conditions.append(Subscriber.status == status)
    if q.strip():
        needle = q.strip().lower()
        conditions.append(
            or_(
                Subscriber.email.contains(needle, autoescape=True),
                func.lower(Subscriber.name).contains(needle, autoescape=True),
            )
        )
    total = int(
        session.scalar(select(func.count()).select_from(Subscriber).where(*conditions)) or 0
    )
    pages = max(1, -(-total // per))
    page = min(max(1, page), pages)
    order = SUBSCRIBER_SORTS.get(sort, SUBSCRIBER_SORTS["newest"])
    rows = session.scalars(
        select(Subscriber).where(*conditions).order_by(*order).offset((page - 1) * per).limit(per)
    )
    return SubscriberTable(list(rows), total, page, pages)


def subscribers_by_id(session: Session, ids: list[int]) -> list[Subscriber]:
    """Return the subscribers with these ids (unknown ids are left out), by address."""
    if not ids:
        return []
    return list(
        session.scalars(select(Subscriber).where(Subscriber.id.in_(ids)).order_by(Subscriber.email))
    )
