"""Whom a send of an issue goes to: its newsletter's eligible readers, a segment, a filter."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from app.audience.filter_sql import compile_filter
from app.audience.segments import get_segment, send_audience
from app.errors import InvalidInput
from app.issues.drafts import get_issue
from app.issues.schemas import SendIn
from app.models import (
    Issue,
)
from app.sends.store.ledger import count_send_recipients


def part_filter(session: Session, issue: Issue, part: SendIn | None, now: datetime) -> str | None:
    """Return the filter text a send keeps (checked now), or None for the whole newsletter."""
    if part is None or (part.segment is None and part.filter is None):
        return None
    if part.segment is not None:
        segment = get_segment(session, part.segment)
        if segment.newsletter_id not in (None, issue.newsletter_id):
            raise InvalidInput(
                f"Segment {segment.name!r} counts the readers of another newsletter than "
                "this issue's."
            )
        text = segment.filter
    else:
        text = part.filter or ""
    compile_filter(text, now)  # a broken filter is a 422 now, not a refusal at the start
    return text


def issue_audience(
    issue: Issue, now: datetime, audience_filter: str | None = None
) -> ColumnElement[bool]:
    """Return who an issue goes to: the active readers of its newsletter who match its filter."""
    return send_audience(audience_filter, now, issue.newsletter_id)


def planned_audience(
    session: Session, issue: Issue, now: datetime, part: SendIn | None = None
) -> ColumnElement[bool]:
    """Return the audience a send of the issue started now would freeze (as send_issue does)."""
    return issue_audience(issue, now, part_filter(session, issue, part, now))


def count_send(session: Session, issue_id: int, now: datetime, part: SendIn | None = None) -> int:
    """Count who a send of the issue started now would freeze (the confirmation page's number)."""
    issue = get_issue(session, issue_id)
    return count_send_recipients(session, now, planned_audience(session, issue, now, part))
