"""Saved segments: a name and a filter; counts and samples of the readers they match."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audience.filter_sql import compile_filter
from app.audience.newsletters import readers_of
from app.errors import Conflict, InvalidInput, NotFound
from app.models import Segment, Subscriber
from app.sends.store.ledger import send_recipients

SAMPLE = 10


def audience_clause(
    filter_text: str, now: datetime, newsletter_id: int | None = None
) -> ColumnElement[bool]:
    """Return who a filter reaches now: eligible readers (as a send freezes them) who match.

    With a newsletter, only its active readers: exactly what a send of its issue to this
    filter freezes (see send_audience).
    """
    return send_recipients(now, send_audience(filter_text, now, newsletter_id))


def send_audience(
    filter_text: str | None, now: datetime, newsletter_id: int | None
) -> ColumnElement[bool]:
    """Return the condition a send ANDs into its freeze: newsletter readers matching a filter."""
    parts = [] if newsletter_id is None else [readers_of(newsletter_id)]
    if filter_text is not None:
        parts.append(compile_filter(filter_text, now))
    return and_(true(), *parts)


def segment_clause(segment: Segment, now: datetime) -> ColumnElement[bool]:
    """Return who a saved segment reaches now (its newsletter's readers, if it names one)."""
    return audience_clause(segment.filter, now, segment.newsletter_id)


def create_segment(
    session: Session,
    name: str,
    filter_text: str,
    now: datetime,
    newsletter_id: int | None = None,
) -> Segment:
    """Save a segment; its filter must parse."""
    name = " ".join(name.split()) if isinstance(name, str) else ""
    if not name or len(name) > 200:
        raise InvalidInput("A segment needs a name of 1 to 200 characters.")
    compile_filter(filter_text, now)  # refuse a broken filter now, not at send time
    segment = Segment(
        name=name,
        filter=filter_text,
        created_at=now,
        updated_at=now,
        newsletter_id=newsletter_id,
    )
    try:
        with session.begin_nested():
            session.add(segment)
    except IntegrityError:
        raise Conflict(f"A segment named {name!r} exists already.") from None
    return segment


def get_segment(session: Session, segment_id: int) -> Segment:
    """Return one segment or raise NotFound."""
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise NotFound("No such segment.")
    return segment


def list_segments(session: Session) -> list[Segment]:
    """Return every segment by name."""
    return list(session.scalars(select(Segment).order_by(Segment.name)))


def count_matching(session: Session, where: ColumnElement[bool]) -> int:
    """Return how many readers match."""
    return int(session.scalar(select(func.count()).select_from(Subscriber).where(where)) or 0)


def sample_matching(session: Session, where: ColumnElement[bool]) -> list[str]:
    """Return the addresses of the first readers that match, by id."""
    return list(
        session.scalars(select(Subscriber.email).where(where).order_by(Subscriber.id).limit(SAMPLE))
    )
