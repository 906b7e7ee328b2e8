"""A newsletter's masthead: its own fields, or the environment's where it has none."""

from __future__ import annotations

from sqlalchemy.orm import Session, object_session

from app.audience.newsletters.fields import TEXT_FIELDS
from app.audience.newsletters.lookup import find, get_newsletter, several
from app.config import Settings
from app.models import DEFAULT_NEWSLETTER_ID, Newsletter
from app.rendering.masthead import Masthead, from_settings, resolve
from app.sends.store.frozen import reader_newsletter_fields


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
