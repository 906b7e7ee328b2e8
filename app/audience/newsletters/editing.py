"""Add a newsletter and change its fields (flush only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audience.newsletters.fields import TEXT_FIELDS, clean_field, clean_relay, clean_slug
from app.audience.newsletters.lookup import get_newsletter
from app.errors import Conflict, InvalidInput
from app.models import Newsletter


def create_newsletter(
    session: Session, data: dict[str, Any], now: datetime, *, relays: Sequence[str] = ()
) -> Newsletter:
    """Add a newsletter; its slug must be free, its relay (if any) one of `relays`."""
    slug = clean_slug(data.get("slug"))
    if not clean_field("name", data.get("name")):
        raise InvalidInput("A newsletter needs a name.")
    row = Newsletter(slug=slug, created_at=now, updated_at=now, is_default=False)
    for field in TEXT_FIELDS:
        setattr(row, field, clean_field(field, data.get(field)))
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
        slug = clean_slug(data["slug"])
        if row.is_default and slug != row.slug:
            raise InvalidInput("The default newsletter's slug cannot change.")
        row.slug = slug
    for field in TEXT_FIELDS:
        if field in data:
            value = clean_field(field, data[field])
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
