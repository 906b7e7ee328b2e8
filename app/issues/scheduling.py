"""Starting sends: now, at a scheduled time, or from the morning cron; never twice."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.delivery.ledger import freeze_recipients
from app.errors import Conflict, NotFound
from app.models import Issue, IssueStatus


def start_send(session: Session, issue_id: int, now: datetime) -> int:
    """Flip a draft or scheduled issue to `sending` and freeze its recipients; return their count.

    The flip is a compare-and-set on the status, so of two concurrent callers exactly one wins
    and the other gets Conflict; the freeze happens in the same transaction as the flip.
    """
    flipped = session.execute(
        update(Issue)
        .where(
            Issue.id == issue_id,
            Issue.status.in_([IssueStatus.draft, IssueStatus.scheduled]),
        )
        .values(status=IssueStatus.sending, started_at=now)
        .returning(Issue.id)
        .execution_options(synchronize_session=False)
    ).first()
    if flipped is None:
        status = session.scalar(select(Issue.status).where(Issue.id == issue_id))
        if status is None:
            raise NotFound(f"No issue {issue_id}.")
        raise Conflict(f"Issue {issue_id} is already {status}; it cannot be sent again.")
    count = freeze_recipients(session, issue_id)
    session.execute(
        update(Issue)
        .where(Issue.id == issue_id)
        .values(recipients=count)
        .execution_options(synchronize_session=False)
    )
    return count


def start_due_issues(session: Session, now: datetime) -> list[int]:
    """Start every scheduled issue whose send_at has passed; return the ids this call started."""
    due = session.scalars(
        select(Issue.id)
        .where(Issue.status == IssueStatus.scheduled, Issue.send_at <= now)
        .order_by(Issue.send_at, Issue.id)
    ).all()
    started = []
    for issue_id in due:
        try:
            start_send(session, issue_id, now)
        except Conflict:
            continue  # another dispatcher or worker took it first
        started.append(issue_id)
    return started
