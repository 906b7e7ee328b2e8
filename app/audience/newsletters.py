"""Newsletters: create, edit, look up; who reads which; leaving one (flush only)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from email.utils import parseaddr
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session

from app.config import Settings
from app.errors import Conflict, InvalidInput, NotFound
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
from app.rendering.masthead import Masthead, from_settings, resolve
from app.sends.store.frozen import reader_newsletter_fields

ADDRESS = re.compile(r"[^@\s<>\",;]+@[^@\s<>\",;]+\.[^@\s<>\",;]+")
SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,79}")
# Fields an editor may set; an empty one falls back to the environment's setting.
TEXT_FIELDS = ("name", "tagline", "from_address", "reply_to", "postal_address", "list_id")
LIMITS = {
    "name": 200,
    "tagline": 300,
    "from_address": 320,
    "reply_to": 320,
    "postal_address": 500,
    "list_id": 255,
}
LIVE_SENDS = (IssueStatus.scheduled, IssueStatus.sending, IssueStatus.paused)


def masthead(newsletter: Newsletter, settings: Settings) -> Masthead:
    """Return a newsletter's effective fields: its own, or the settings' where it has none."""
    return resolve(
        settings,
        id=newsletter.id,
        slug=newsletter.slug,
        is_default=newsletter.is_default,
        several=several(object_session(newsletter)),
        **{field: getattr(newsletter, field) for field in TEXT_FIELDS},
    )


def masthead_of(session: Session, settings: Settings, slug: str | None = None) -> Masthead | None:
    """Return the masthead of the newsletter with this slug (None: the default), else None.

    The default newsletter always has one: a database without its row (made by hand) shows
    the settings' identity.
    """
    if slug is None:
        row = session.get(Newsletter, DEFAULT_NEWSLETTER_ID)
        return masthead(row, settings) if row is not None else from_settings(settings)
    found = find(session, slug)
    return masthead(found, settings) if found is not None else None


def reader_mastheads(
    session: Session, settings: Settings, subscriber_id: int, standings: tuple[str, ...]
) -> list[Masthead]:
    """Return the mastheads of the newsletters a reader has these standings with (by id).

    None such: the default newsletter's (a reader from before newsletters).
    """
    found = [
        resolve(settings, **fields)
        for fields in reader_newsletter_fields(session, subscriber_id, standings)
    ]
    return found or [from_settings(settings)]


def masthead_by_id(session: Session, settings: Settings, newsletter_id: int) -> Masthead:
    """Return the masthead of one newsletter (NotFound when there is none)."""
    return masthead(get_newsletter(session, newsletter_id), settings)


def several(session: Session | None) -> bool:
    """Tell whether the install has more than one newsletter."""
    if session is None:
        return True
    return (session.scalar(select(func.count()).select_from(Newsletter)) or 0) > 1


def _clean(field: str, value: Any) -> str | None:
    """Return a field's stored form (None: fall back to the setting), or raise InvalidInput."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text.")
    if field in ("from_address", "reply_to") and ("\r" in value or "\n" in value):
        raise InvalidInput(f"{field} cannot contain a line break.")
    # Every one of these may reach a header or a one-line footer: no line breaks, ever.
    text = " ".join(value.split())
    if len(text) > LIMITS[field]:
        raise InvalidInput(f"{field} can be at most {LIMITS[field]} characters long.")
    if not text:
        return None
    if field in ("from_address", "reply_to"):
        _name, addr = parseaddr(text)
        # One address, alone or as `Name <address>`: nothing else may ride along.
        if not ADDRESS.fullmatch(addr) or not (text == addr or text.endswith(f"<{addr}>")):
            raise InvalidInput(f"{field} must be an address, e.g. Name <news@example.org>.")
    return text


def _clean_slug(slug: Any) -> str:
    if not isinstance(slug, str) or not SLUG.fullmatch(slug):
        raise InvalidInput(
            "slug must be 1 to 80 lower-case letters, digits and hyphens, starting with one of "
            "the first two."
        )
    return slug


def clean_relay(value: Any, relays: Sequence[str]) -> str | None:
    """Return a relay name among the configured `relays` (None: the pool), or raise InvalidInput."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value in relays:
        return value
    shown = str(value)[:60]
    if not relays:
        raise InvalidInput(
            f"There is no relay {shown!r}: MORNINGPOST_SMTP_URL names no relay (mail is captured)."
        )
    names = ", ".join(repr(r) for r in relays)
    raise InvalidInput(f"There is no relay {shown!r}; the configured relays are {names}.")


def create_newsletter(
    session: Session, data: dict[str, Any], now: datetime, *, relays: Sequence[str] = ()
) -> Newsletter:
    """Add a newsletter; its slug must be free, its relay (if any) one of `relays`."""
    slug = _clean_slug(data.get("slug"))
    if not _clean("name", data.get("name")):
        raise InvalidInput("A newsletter needs a name.")
    row = Newsletter(slug=slug, created_at=now, updated_at=now, is_default=False)
    for field in TEXT_FIELDS:
        setattr(row, field, _clean(field, data.get(field)))
    row.relay = clean_relay(data.get("relay"), relays)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise Conflict(f"A newsletter with the slug {slug!r} exists already.") from None
    return row


def update_newsletter(
    session: Session,
    newsletter_id: int,
    data: dict[str, Any],
    now: datetime,
    *,
    relays: Sequence[str] = (),
) -> Newsletter:
    """Change the fields given; null or an empty string puts a field back to the setting."""
    row = get_newsletter(session, newsletter_id)
    if "relay" in data:
        row.relay = clean_relay(data["relay"], relays)
    if "slug" in data:
        slug = _clean_slug(data["slug"])
        if row.is_default and slug != row.slug:
            raise InvalidInput("The default newsletter's slug cannot change.")
        row.slug = slug
    for field in TEXT_FIELDS:
        if field in data:
            value = _clean(field, data[field])
            if field == "name" and value is None and not row.is_default:
                raise InvalidInput("A newsletter needs a name.")
            setattr(row, field, value)
    row.updated_at = now
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(f"A newsletter with the slug {row.slug!r} exists already.") from None
    return row


def get_newsletter(session: Session, newsletter_id: int) -> Newsletter:
    """Return one newsletter or raise NotFound."""
    row = session.get(Newsletter, newsletter_id)
    if row is None:
        raise NotFound(f"No newsletter {newsletter_id}.")
    return row


def by_slug(session: Session, slug: str | None) -> Newsletter:
    """Return the newsletter with this slug (None: the default one) or raise InvalidInput."""
    if slug is None:
        return get_newsletter(session, DEFAULT_NEWSLETTER_ID)
    row = session.scalar(select(Newsletter).where(Newsletter.slug == slug))
    if row is None:
        raise InvalidInput(f"There is no newsletter {slug!r}.")
    return row


def find(session: Session, slug: str | None) -> Newsletter | None:
    """Return the newsletter with this slug, or None (none given, or no such newsletter)."""
    if not slug or not SLUG.fullmatch(slug):
        return None
    return session.scalar(select(Newsletter).where(Newsletter.slug == slug))


def list_newsletters(session: Session) -> list[Newsletter]:
    """Return every newsletter, the default first, then by name."""
    return list(
        session.scalars(
            select(Newsletter).order_by(
                Newsletter.is_default.desc(), Newsletter.name, Newsletter.id
            )
        )
    )


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
    _adopt_default(session, subscriber_id, now)
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


def _adopt_default(session: Session, subscriber_id: int, now: datetime) -> None:
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


def ids_of(session: Session, slugs: list[str]) -> list[int]:
    """Return the ids of these newsletters (none given: the default one), or raise InvalidInput."""
    if not slugs:
        return [DEFAULT_NEWSLETTER_ID]
    wanted = list(dict.fromkeys(slugs))
    found = dict(
        session.execute(
            select(Newsletter.slug, Newsletter.id).where(Newsletter.slug.in_(wanted))
        ).all()
    )
    missing = [s for s in wanted if s not in found]
    if missing:
        raise InvalidInput(f"There is no newsletter {missing[0][:80]!r}.")
    return [int(found[s]) for s in wanted]


def request_subscriptions(
    session: Session, subscriber_id: int, newsletter_ids: list[int], now: datetime, *, fresh: bool
) -> bool:
    """Mark these newsletters pending for a reader (those not already active); True if any.

    A fresh reader takes exactly these; a known one keeps what they had (written down first).
    """
    if not fresh:
        _adopt_default(session, subscriber_id, now)
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


def choose(session: Session, subscriber_id: int, chosen: set[int], now: datetime) -> None:
    """Make a reader take exactly the `chosen` newsletters (their preferences page's boxes).

    The page is reached by the reader's own signed link, so a ticked box is consent enough.
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
        elif newsletter_id not in chosen and now_taking in (
            SubscriptionStatus.active,
            SubscriptionStatus.pending,
        ):
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


def audience_and(newsletter_id: int, extra: ColumnElement[bool] | None) -> ColumnElement[bool]:
    """Return the readers of a newsletter, narrowed by `extra` (a segment's condition)."""
    base = readers_of(newsletter_id)
    return base if extra is None else and_(base, extra)


def field_errors(data: dict[str, Any]) -> dict[str, str]:
    """Return {field: message} for each given field the checks above would refuse."""
    errors: dict[str, str] = {}
    for field in TEXT_FIELDS:
        if field in data:
            try:
                _clean(field, data[field])
            except InvalidInput as exc:
                errors[field] = exc.message
    if "slug" in data:
        try:
            _clean_slug(data["slug"])
        except InvalidInput as exc:
            errors["slug"] = exc.message
    return errors
