"""Find newsletters: by id, by slug, every one; whether there are several."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audience.newsletters.fields import SLUG
from app.errors import InvalidInput, NotFound
from app.models import DEFAULT_NEWSLETTER_ID, Newsletter


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


def several(session: Session | None) -> bool:
    """Tell whether the install has more than one newsletter."""
    if session is None:
        return True
    return (session.scalar(select(func.count()).select_from(Newsletter)) or 0) > 1
