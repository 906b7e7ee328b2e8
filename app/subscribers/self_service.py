"""What a reader does from an email's links: leave, rejoin, pause, update preferences."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audience.newsletters import choose, leave, set_subscription, still_taking
from app.errors import BadToken, Conflict, InvalidInput, NotFound
from app.models import Subscriber, SubscriberStatus, Subscription, SubscriptionStatus
from app.subscribers.records import _by_token, _set_status, is_suppressed
from app.subscribers.values import clean_name, clean_timezone, mask_email
from app.tokens import ListToken, micros
from app.webhooks import events

PAUSE_MAX_WEEKS = 26
GONE = "This subscription no longer exists. You can sign up again."
OUTDATED_LINK = "This link is out of date; please use the one in your most recent email."
NO_UNDO = "This address cannot be subscribed again from here; please sign up again."


@dataclass(frozen=True)
class Unsubscribed:
    """What an unsubscribe link did."""

    current: bool  # the link names this very row (id and nonce), not just an id
    at: datetime | None  # when this call unsubscribed them; None when nothing changed


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


def choose_newsletters(
    session: Session, ref: ListToken, chosen: set[int], now: datetime
) -> Unsubscribed:
    """Make a reader take exactly the ticked newsletters (the preferences page's boxes).

    Unticking every box is leaving the list, as a one-click link leaving the last one is.
    """
    row = _by_token(session, ref, lock=True)
    if row is None:
        raise NotFound(GONE)
    choose(session, row.id, chosen, now)
    if row.status == SubscriberStatus.active and not still_taking(session, row.id):
        return unsubscribe(session, ref, now)
    return Unsubscribed(current=ref.nonce is not None, at=None)


def resubscribe(
    session: Session, ref: ListToken, undo: tuple[int, str, int], now: datetime
) -> Subscriber:
    """Undo the unsubscribe an undo token was issued for; the reader's own click is consent.

    Only that unsubscribe: if anything changed the status since (an editor, a bounce, a
    second unsubscribe), the moment no longer matches and the undo is refused. A one-click
    link that left the reader's last newsletter left it in the same moment: it is taken back.
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
    _rejoin_left_at(session, row.id, row.unsubscribed_at, now)
    _set_status(row, SubscriberStatus.active, now)
    row.unsubscribed_at = None
    row.paused_until = None
    if row.confirmed_at is None:
        row.confirmed_at = now
    session.flush()
    return row


def _rejoin_left_at(session: Session, subscriber_id: int, left_at: datetime, now: datetime) -> None:
    """Take back the newsletters a reader left at the very moment of the undone unsubscribe."""
    left = session.scalars(
        select(Subscription).where(
            Subscription.subscriber_id == subscriber_id,
            Subscription.status == SubscriptionStatus.unsubscribed,
        )
    ).all()
    # leave_newsletter stamps the membership and the list with one `now`; a newsletter left
    # at any other moment was left by another choice, which this undo does not take back.
    for membership in left:
        if micros(membership.updated_at) == micros(left_at):
            set_subscription(
                session, subscriber_id, membership.newsletter_id, SubscriptionStatus.active, now
            )


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
