"""The public sign-up: double opt-in, resent and reopened confirmations, confirm, welcome."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import metrics
from app.addresses import normalize_email
from app.audience.newsletters import confirm_pending, drop_unasked, request_subscriptions
from app.automations.sequences.welcome import enrol_welcome
from app.errors import BadToken
from app.models import (
    DEFAULT_NEWSLETTER_ID,
    OutboxKind,
    OutboxMessage,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from app.subscribers.records import _by_email, _set_status, is_suppressed
from app.subscribers.values import clean_name, clean_timezone
from app.tokens import TokenService, email_tag, hash_secret
from app.webhooks import events

CONSENT_SOURCES = ("form", "api", "import", "editor")
STALE_CONFIRM = "This confirmation link is not valid any more. Please sign up again."


class SubscribeOutcome(enum.StrEnum):
    """What subscribe() did; callers must not show it to the public (no account enumeration)."""

    created, resent, reopened = "created", "resent", "reopened"
    throttled, already_active, refused = "throttled", "already_active", "refused"


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
