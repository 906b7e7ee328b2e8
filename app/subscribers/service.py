"""Subscriber decisions: double opt-in, confirm, leave, preferences, editor CRUD (flush only)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import metrics
from app.addresses import normalize_email
from app.audience.attributes import merge_attributes
from app.audience.newsletters import (
    confirm_pending,
    drop_unasked,
    leave,
    request_subscriptions,
    still_taking,
)
from app.automations.sequences.welcome import enrol_welcome
from app.config import is_time_zone
from app.errors import BadToken, Conflict, InvalidInput, NotFound
from app.models import (
    DEFAULT_NEWSLETTER_ID,
    OutboxKind,
    OutboxMessage,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
)
from app.models.base import ID_MAX
from app.models.subscriber import suppressed
from app.sends.store.log import DeliveryPage, delivery_page
from app.tokens import ListToken, TokenService, email_tag, hash_secret, micros
from app.webhooks import events

NAME_MAX = 200
PAGE_MAX = 200
PAUSE_MAX_WEEKS = 26
CONSENT_SOURCES = ("form", "api", "import", "editor")
STALE_CONFIRM = "This confirmation link is not valid any more. Please sign up again."
GONE = "This subscription no longer exists. You can sign up again."
OUTDATED_LINK = "This link is out of date; please use the one in your most recent email."
NO_UNDO = "This address cannot be subscribed again from here; please sign up again."


class SubscribeOutcome(enum.StrEnum):
    """What subscribe() did; callers must not show it to the public (no account enumeration)."""

    created, resent, reopened = "created", "resent", "reopened"
    throttled, already_active, refused = "throttled", "already_active", "refused"


def clean_name(raw: str | None) -> str:
    """Return a trimmed display name or raise InvalidInput (line breaks, over 200 characters)."""
    if raw is None:
        return ""
    if "\r" in raw or "\n" in raw:
        # A name ends up in headers and greetings; a line break there is an injection attempt.
        raise InvalidInput("A name cannot contain a line break.")
    if any(ord(c) < 32 and c != "\t" for c in raw):
        raise InvalidInput("A name cannot contain control characters.")
    name = raw.strip()
    if len(name) > NAME_MAX:
        raise InvalidInput(f"A name can be at most {NAME_MAX} characters long.")
    return name


def clean_timezone(raw: str | None) -> str | None:
    """Return a known IANA time zone name, None when absent, or raise InvalidInput."""
    if raw is None or not raw.strip():
        return None
    name = raw.strip()
    if not is_time_zone(name):
        raise InvalidInput(
            f"{name[:64]!r} is not a known time zone; use an IANA name such as "
            "Europe/Berlin, America/New_York or UTC."
        )
    return name


def timezone_or_default(raw: str | None, default: str) -> str:
    """Return the browser's time zone when it is a known name, else the default (never fails)."""
    # A public sign-up must not fail over a zone an old browser names oddly.
    try:
        return clean_timezone(raw) or default
    except InvalidInput:
        return default


def is_suppressed(session: Session, email: str) -> bool:
    """Tell whether a normalised address is on the suppression list."""
    return bool(session.scalar(select(suppressed(hash_secret(email)))))


def get_subscriber(session: Session, subscriber_id: int) -> Subscriber:
    """Return one subscriber or raise NotFound."""
    row = session.get(Subscriber, subscriber_id)
    if row is None:
        raise NotFound(f"No subscriber {subscriber_id}.")
    return row


def _by_email(session: Session, email: str, *, lock: bool = False) -> Subscriber | None:
    stmt = select(Subscriber).where(Subscriber.email == email)
    if lock:
        # Serialises two sign-ups for one address on PostgreSQL; SQLite's BEGIN IMMEDIATE does it.
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def _set_status(row: Subscriber, status: SubscriberStatus, now: datetime) -> None:
    if row.status != status:
        row.status = status
        row.status_changed_at = now


def _queue_confirmation(session: Session, row: Subscriber, now: datetime) -> None:
    session.add(
        OutboxMessage(
            kind=OutboxKind.confirm, to_address=row.email, subscriber_id=row.id, created_at=now
        )
    )
    row.confirmation_sent_at = now
    metrics.signed_up()


def subscribe(
    session: Session,
    *,
    email: str,
    name: str | None,
    source: str,
    ip: str | None,
    now: datetime,
    confirmation_interval: timedelta,
    timezone: str = "UTC",
    newsletters: list[int] | None = None,
) -> SubscribeOutcome:
    """Record a sign-up and queue a confirmation email when one is due.

    `newsletters` (ids; default: the default newsletter) become pending, and the one
    confirmation covers them all.
    """
    wanted = newsletters or [DEFAULT_NEWSLETTER_ID]
    address = normalize_email(email)
    zone = clean_timezone(timezone) or "UTC"
    display = clean_name(name)
    if source not in CONSENT_SOURCES:
        raise ValueError(f"unknown consent source {source!r}")
    if is_suppressed(session, address):
        return SubscribeOutcome.refused
    row = _by_email(session, address, lock=True)
    if row is None:
        row = Subscriber(
            email=address,
            email_hash=hash_secret(address),
            name=display,
            status=SubscriberStatus.pending,
            consent_source=source,
            consent_ip=ip,
            created_at=now,
            status_changed_at=now,
            timezone=zone,
        )
        try:
            # A savepoint, so losing a race to a concurrent sign-up is not an error.
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            row = _by_email(session, address, lock=True)
            if row is None:  # pragma: no cover - the conflicting row vanished again
                raise
        else:
            session.flush()
            request_subscriptions(session, row.id, wanted, now, fresh=True)
            _queue_confirmation(session, row, now)
            session.flush()
            return SubscribeOutcome.created
    if row.status != SubscriberStatus.active:
        row.timezone = zone  # a fresh sign-up from a browser knows where the reader is now
    return _subscribe_existing(
        session, row, display, source, ip, now, confirmation_interval, wanted
    )


def _subscribe_existing(
    session: Session,
    row: Subscriber,
    name: str,
    source: str,
    ip: str | None,
    now: datetime,
    interval: timedelta,
    wanted: list[int],
) -> SubscribeOutcome:
    if row.status in (SubscriberStatus.bounced, SubscriberStatus.complained):
        return SubscribeOutcome.refused
    reopened = row.status == SubscriberStatus.unsubscribed
    if reopened:
        # Coming back after leaving everything: they take what they ask for now, no more.
        drop_unasked(session, row.id, wanted, now)
    # New newsletters wait for the confirmation too: anyone can type anyone's address.
    asked = request_subscriptions(session, row.id, wanted, now, fresh=False)
    if row.status == SubscriberStatus.active and not asked:
        return SubscribeOutcome.already_active
    if reopened:
        # Coming back after leaving needs a fresh double opt-in, with its own consent trail.
        _set_status(row, SubscriberStatus.pending, now)
        row.confirmed_at = None
        if name:
            row.name = name
        row.consent_source = source
        row.consent_ip = ip
    # A pending row keeps the name and consent trail of the sign-up that made it: anyone
    # can type anyone's address, and a stranger must not rename them or replace the IP.
    due = row.confirmation_sent_at is None or now - row.confirmation_sent_at >= interval
    if due:
        _queue_confirmation(session, row, now)
    session.flush()
    if not due:
        return SubscribeOutcome.throttled
    return SubscribeOutcome.reopened if reopened else SubscribeOutcome.resent


def confirm(
    session: Session, tokens: TokenService, token: str, now: datetime, *, welcome: bool = False
) -> Subscriber:
    """Activate the subscriber a confirmation token names; confirming twice is fine.

    With `welcome`, the reader enters the welcome sequence of each newsletter this link
    confirms (once per newsletter; its one step is queued at once).
    """
    subscriber_id, tag = tokens.read_confirm_token(token)
    row = session.get(Subscriber, subscriber_id, with_for_update=True)
    if row is None or tag != email_tag(row.email):
        # Erased, or the address changed since the link was sent: the link no longer applies.
        raise BadToken(STALE_CONFIRM)
    if row.status == SubscriberStatus.active:
        joined = _pending_newsletters(session, row.id)
        confirm_pending(session, row.id, now)  # the newsletters this link was sent for
        if welcome and joined:
            enrol_welcome(session, row.id, joined, now)
        return row
    if row.status != SubscriberStatus.pending or is_suppressed(session, row.email):
        # They left (or bounced) after this link was sent; an old link must not undo that.
        raise BadToken(STALE_CONFIRM)
    _set_status(row, SubscriberStatus.active, now)
    row.confirmed_at = now
    row.unsubscribed_at = None
    joined = _pending_newsletters(session, row.id)
    confirm_pending(session, row.id, now)
    if welcome:
        # A reader without subscriptions takes the default newsletter (readers_of).
        has_any = session.scalar(
            select(Subscription.newsletter_id).where(Subscription.subscriber_id == row.id)
        )
        enrol_welcome(session, row.id, joined or ([] if has_any else [DEFAULT_NEWSLETTER_ID]), now)
    session.flush()
    events.subscriber_event(session, events.SUBSCRIBER_CONFIRMED, row)
    metrics.confirmed()
    return row


def _pending_newsletters(session: Session, subscriber_id: int) -> list[int]:
    """Return the newsletters a reader's confirmation is about to activate."""
    return list(
        session.scalars(
            select(Subscription.newsletter_id)
            .where(
                Subscription.subscriber_id == subscriber_id,
                Subscription.status == SubscriptionStatus.pending,
            )
            .order_by(Subscription.newsletter_id)
        )
    )


@dataclass(frozen=True)
class Unsubscribed:
    """What an unsubscribe link did."""

    current: bool  # the link names this very row (id and nonce), not just an id
    at: datetime | None  # when this call unsubscribed them; None when nothing changed


def _by_token(session: Session, ref: ListToken, *, lock: bool = False) -> Subscriber | None:
    """Return the row a list token names, or None when erased or the id now names another."""
    row = session.get(Subscriber, ref.subscriber_id, with_for_update=lock)
    if row is None or (ref.nonce is not None and row.token_nonce != ref.nonce):
        return None
    return row


def get_subscriber_for_page(session: Session, ref: ListToken) -> Subscriber:
    """Return the subscriber a preferences token names, or a reader-facing error."""
    if ref.nonce is None:
        # A link from before nonces cannot tell an erased reader from a later holder of
        # the id, so it shows nobody's data.
        raise BadToken(OUTDATED_LINK)
    row = _by_token(session, ref)
    if row is None:
        raise NotFound(GONE)
    return row


def mask_email(email: str) -> str:
    """Return the address with its local part hidden but the first letter: j•••@example.org."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}•••@{domain}" if local else email


def masked_address(session: Session, ref: ListToken) -> str | None:
    """Return the masked address a list token names, or None (erased, or an old link)."""
    row = _by_token(session, ref) if ref.nonce is not None else None
    return mask_email(row.email) if row is not None else None


def unsubscribe(session: Session, ref: ListToken, now: datetime) -> Unsubscribed:
    """Unsubscribe by a list token; repeats and erased subscribers are fine (nothing changes).

    A token from before nonces still unsubscribes: a working unsubscribe link in every old
    email matters more than the small chance it names a later holder of a reused id.
    """
    row = _by_token(session, ref, lock=True)
    if row is None:
        return Unsubscribed(current=False, at=None)
    current = ref.nonce is not None
    if row.status in (SubscriberStatus.active, SubscriberStatus.pending):
        _set_status(row, SubscriberStatus.unsubscribed, now)
        row.unsubscribed_at = now
        session.flush()
        events.subscriber_event(session, events.SUBSCRIBER_UNSUBSCRIBED, row)
        return Unsubscribed(current=current, at=now)
    return Unsubscribed(current=current, at=None)


def leave_newsletter(
    session: Session, ref: ListToken, newsletter_id: int, now: datetime
) -> Unsubscribed:
    """Leave one newsletter by a list token (an issue's one-click link); the others stay."""
    row = _by_token(session, ref, lock=True)
    if row is None:
        return Unsubscribed(current=False, at=None)
    leave(session, row.id, newsletter_id, now)
    session.flush()
    if not still_taking(session, row.id):
        # Their last newsletter: leaving it is leaving the list, as it always was.
        return unsubscribe(session, ref, now)
    # No undo button: nothing global changed, and the preferences page takes it back.
    return Unsubscribed(current=ref.nonce is not None, at=None)


def resubscribe(
    session: Session, ref: ListToken, undo: tuple[int, str, int], now: datetime
) -> Subscriber:
    """Undo the unsubscribe an undo token was issued for; the reader's own click is consent.

    Only that unsubscribe: if anything changed the status since (an editor, a bounce, a
    second unsubscribe), the moment no longer matches and the undo is refused.
    """
    undo_id, undo_nonce, undo_at = undo
    if ref.nonce is None or (undo_id, undo_nonce) != (ref.subscriber_id, ref.nonce):
        raise BadToken(NO_UNDO)
    row = _by_token(session, ref, lock=True)
    if row is None:
        raise NotFound(GONE)
    if row.status == SubscriberStatus.active:
        return row
    if (
        row.status != SubscriberStatus.unsubscribed
        or row.unsubscribed_at is None
        or micros(row.unsubscribed_at) != undo_at
        or is_suppressed(session, row.email)
    ):
        raise Conflict(NO_UNDO)
    _set_status(row, SubscriberStatus.active, now)
    row.unsubscribed_at = None
    row.paused_until = None
    if row.confirmed_at is None:
        row.confirmed_at = now
    session.flush()
    return row


def update_preferences(
    session: Session,
    subscriber_id: int,
    *,
    name: str | None,
    pause_weeks: int,
    now: datetime,
    timezone: str | None = None,
) -> Subscriber:
    """Change the name, pause (0 weeks resumes) and time zone of a reader reached by their token."""
    row = session.get(Subscriber, subscriber_id)
    if row is None:
        raise NotFound(GONE)
    display = clean_name(name)
    zone = clean_timezone(timezone)
    if not 0 <= pause_weeks <= PAUSE_MAX_WEEKS:
        raise InvalidInput(f"A pause can last from 0 to {PAUSE_MAX_WEEKS} weeks.")
    row.name = display
    if zone is not None:
        row.timezone = zone
    row.paused_until = now + timedelta(weeks=pause_weeks) if pause_weeks else None
    session.flush()
    return row


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def parse_cursor(cursor: str | None) -> int | None:
    """Return the id an opaque cursor stands for, or raise InvalidInput."""
    if cursor is None or cursor == "":
        return None
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 10 or int(cursor) > ID_MAX:
        raise InvalidInput("That cursor is not valid; use next_cursor from the previous page.")
    return int(cursor)


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
