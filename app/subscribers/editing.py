"""The editors' subscriber list: page, add, change, erase, a reader's deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.addresses import normalize_email
from app.audience.attributes import merge_attributes
from app.audience.newsletters import confirm_pending
from app.errors import Conflict, InvalidInput
from app.models import Subscriber, SubscriberStatus, Suppression
from app.sends.store.log import DeliveryPage, delivery_page
from app.subscribers.records import _by_email, _set_status, get_subscriber, is_suppressed
from app.subscribers.signup import _queue_confirmation
from app.subscribers.values import PAGE_MAX, _escape_like, clean_name, clean_timezone, parse_cursor
from app.tokens import hash_secret
from app.webhooks import events


def list_subscribers(
    session: Session,
    *,
    status: SubscriberStatus | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Subscriber], str | None]:
    """Return one page of subscribers in id order and the cursor of the next page (or None)."""
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidInput(f"limit must be between 1 and {PAGE_MAX}.")
    after = parse_cursor(cursor)
    conditions: list[ColumnElement[bool]] = []
    if status is not None:
        conditions.append(Subscriber.status == status)
    if q:
        pattern = f"%{_escape_like(q.strip().lower())}%"
        conditions.append(
            or_(
                Subscriber.email.like(pattern, escape="\\"),
                Subscriber.name.ilike(pattern, escape="\\"),
            )
        )
    if after is not None:
        conditions.append(Subscriber.id > after)
    # One row more than asked tells whether another page exists without a COUNT.
    stmt = select(Subscriber).where(*conditions).order_by(Subscriber.id).limit(limit + 1)
    rows = list(session.scalars(stmt))
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, str(rows[-1].id)
    return rows, None


def create_subscriber(
    session: Session,
    *,
    email: str,
    name: str | None,
    status: SubscriberStatus,
    now: datetime,
    timezone: str | None = None,
    default_timezone: str = "UTC",
) -> Subscriber:
    """Add a subscriber as an editor; `pending` sends a confirmation, suppressed → Conflict."""
    address = normalize_email(email)
    display = clean_name(name)
    zone = clean_timezone(timezone) or default_timezone
    if status not in (SubscriberStatus.active, SubscriberStatus.pending):
        raise InvalidInput("An editor can add subscribers as active or pending only.")
    if is_suppressed(session, address):
        raise Conflict(
            "This address is on the suppression list (erased, bounced or complained); "
            "it cannot be added unless the suppression is lifted."
        )
    if _by_email(session, address) is not None:
        raise Conflict("A subscriber with this address already exists.")
    row = Subscriber(
        email=address,
        email_hash=hash_secret(address),
        name=display,
        status=status,
        consent_source="editor",
        created_at=now,
        status_changed_at=now,
        confirmed_at=now if status == SubscriberStatus.active else None,
        timezone=zone,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise Conflict("A subscriber with this address already exists.") from None
    if status == SubscriberStatus.pending:
        _queue_confirmation(session, row, now)
    session.flush()
    return row


def update_subscriber(
    session: Session,
    subscriber_id: int,
    *,
    now: datetime,
    email: str | None = None,
    name: str | None = None,
    status: SubscriberStatus | None = None,
    timezone: str | None = None,
    attributes: dict[str, Any] | None = None,
) -> Subscriber:
    """Change an address, a name, the time zone, attributes or the status as an editor."""
    row = get_subscriber(session, subscriber_id)
    if attributes is not None:
        row.attributes = merge_attributes(row.attributes, attributes)
    zone = clean_timezone(timezone)
    if zone is not None:
        row.timezone = zone
    if name is not None:
        row.name = clean_name(name)
    if email is not None:
        address = normalize_email(email)
        if address != row.email:
            if is_suppressed(session, address):
                raise Conflict("This address is on the suppression list.")
            other = _by_email(session, address)
            if other is not None and other.id != row.id:
                raise Conflict("Another subscriber already has this address.")
            row.email = address
            row.email_hash = hash_secret(address)
    if status is not None:
        if status not in (SubscriberStatus.active, SubscriberStatus.unsubscribed):
            raise InvalidInput("An editor can set the status to active or unsubscribed only.")
        if status == SubscriberStatus.active and row.status != SubscriberStatus.active:
            if is_suppressed(session, row.email):
                raise Conflict("This address is on the suppression list.")
            if row.status == SubscriberStatus.pending:
                # The editor vouches for the half-done sign-up: the newsletters it asked for
                # start too, as the confirmation link would have started them.
                confirm_pending(session, row.id, now)
            _set_status(row, SubscriberStatus.active, now)
            row.consent_source = "editor"
            row.confirmed_at = row.confirmed_at or now
            row.unsubscribed_at = None
        elif status == SubscriberStatus.unsubscribed and row.status != status:
            _set_status(row, SubscriberStatus.unsubscribed, now)
            row.unsubscribed_at = now
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict("Another subscriber already has this address.") from None
    if status == SubscriberStatus.unsubscribed and row.unsubscribed_at == now:
        events.subscriber_event(session, events.SUBSCRIBER_UNSUBSCRIBED, row, "editor")
    return row


def erase_subscriber(session: Session, subscriber_id: int, now: datetime) -> None:
    """Delete a subscriber's personal data and keep only a hash so the address is never mailed."""
    row = get_subscriber(session, subscriber_id)
    if not is_suppressed(session, row.email):
        digest = hash_secret(row.email)
        try:
            with session.begin_nested():
                session.add(
                    Suppression(email_hash=digest, reason="erased", source="editor", created_at=now)
                )
        except IntegrityError:
            pass  # erased at the same moment by another request: the entry is there
    # Deliveries keep their rows (FK SET NULL) for the stats; the outbox rows go (CASCADE).
    # A statement, not an ORM delete: a concurrent erasure leaves nothing to delete, and that
    # is the outcome wanted, not an error.
    session.execute(delete(Subscriber).where(Subscriber.id == row.id))
    session.expunge(row)


def subscriber_deliveries(
    session: Session, subscriber_id: int, *, status: str | None, cursor: str | None, limit: int
) -> DeliveryPage:
    """Return a page of one reader's deliveries across issues."""
    get_subscriber(session, subscriber_id)
    return delivery_page(
        session, subscriber_id=subscriber_id, status=status, after=parse_cursor(cursor), limit=limit
    )
