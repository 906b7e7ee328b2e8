"""Who a console send goes to: everyone of the issue's newsletter, a saved segment, or a filter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.audience.segments import get_segment, list_segments
from app.errors import InvalidInput
from app.issues.schemas import SendIn, read_send_in
from app.issues.service import issue_audience, part_filter
from app.models import Issue, Segment
from app.sends.store.ledger import count_send_recipients

CHOICES = ("everyone", "segment", "filter")


@dataclass(frozen=True)
class Audience:
    """The audience chosen on the issue page, as the confirmation names and counts it."""

    choice: str  # everyone | segment | filter
    segment: Segment | None
    filter: str  # the ad-hoc filter as typed ("" unless choice == "filter")
    count: int

    @property
    def part(self) -> SendIn | None:
        """Return the send input for the part of the newsletter chosen (None: everyone)."""
        if self.segment is not None:
            return read_send_in(segment=self.segment.id)
        if self.choice == "filter":
            return read_send_in(filter=self.filter)
        return None


def read_choice(
    session: Session,
    issue: Issue,
    now: datetime,
    choice: str,
    segment: str,
    filter_text: str,
    *,
    counted: bool = True,
) -> Audience:
    """Return the chosen audience and how many a send now freezes; refuse what the send would.

    The filter kept and the count both come from the send's own code (part_filter, and the
    ledger's send_recipients over the issue's audience), so the number shown is the one frozen.
    """
    if choice not in CHOICES:
        choice = "everyone"
    row: Segment | None = None
    part: SendIn | None = None
    if choice == "segment":
        if not segment.isdigit() or len(segment) > 12:
            raise InvalidInput("Choose a saved segment, or send to everyone.")
        row = get_segment(session, int(segment))
        part = read_send_in(segment=row.id)
    elif choice == "filter":
        if not filter_text.strip():
            raise InvalidInput("Type a filter, or send to everyone.")
        part = read_send_in(filter=filter_text)
    kept = part_filter(session, issue, part, now)
    # The send itself counts what it freezes; only the confirmation needs the number first.
    count = count_send_recipients(session, now, issue_audience(issue, now, kept)) if counted else -1
    return Audience(choice, row, filter_text if choice == "filter" else "", count)


def segments_for(session: Session, issue: Issue) -> list[Segment]:
    """Return the saved segments an issue can go to: its newsletter's, and those of none."""
    return [s for s in list_segments(session) if s.newsletter_id in (None, issue.newsletter_id)]
