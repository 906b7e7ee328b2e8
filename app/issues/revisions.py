"""Revisions of an issue's Markdown: kept on every save and autosave, so text is never lost."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.models import IssueRevision

# Autosaves while typing fold into one revision until the editor pauses this long: a list of
# revisions a person can read, not one per keystroke.
FOLD_WITHIN = timedelta(minutes=2)
KEEP_PER_ISSUE = 100
# Text kept for a draft that was never created (a session ended first) lives this long.
STASH_LIFETIME = timedelta(days=7)


def record_revision(
    session: Session,
    issue_id: int | None,
    editor_id: int | None,
    markdown: str,
    source: str,
    now: datetime,
) -> IssueRevision:
    """Keep `markdown` as a revision; an autosave soon after the last one updates it instead."""
    last = None
    if issue_id is not None:
        last = session.scalars(
            select(IssueRevision)
            .where(IssueRevision.issue_id == issue_id)
            .order_by(IssueRevision.id.desc())
            .limit(1)
        ).first()
    if last is not None and last.markdown == markdown:
        return last  # nothing new to keep
    if (
        last is not None
        and source == "autosave"
        and last.source == "autosave"
        and last.editor_id == editor_id
        and now - last.updated_at < FOLD_WITHIN
    ):
        last.markdown = markdown
        last.updated_at = now
        session.flush()
        return last
    row = IssueRevision(
        issue_id=issue_id,
        editor_id=editor_id,
        source=source,
        markdown=markdown,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    _prune(session, issue_id, now)
    return row


def _prune(session: Session, issue_id: int | None, now: datetime) -> None:
    if issue_id is None:
        session.execute(
            delete(IssueRevision).where(
                IssueRevision.issue_id.is_(None), IssueRevision.updated_at < now - STASH_LIFETIME
            )
        )
        return
    keep = select(IssueRevision.id).where(IssueRevision.issue_id == issue_id)
    cutoff = session.scalar(
        keep.order_by(IssueRevision.id.desc()).offset(KEEP_PER_ISSUE - 1).limit(1)
    )
    if cutoff is not None:
        session.execute(
            delete(IssueRevision).where(
                IssueRevision.issue_id == issue_id, IssueRevision.id < cutoff
            )
        )


def list_revisions(session: Session, issue_id: int) -> list[IssueRevision]:
    """Return an issue's revisions, newest first."""
    return list(
        session.scalars(
            select(IssueRevision)
            .where(IssueRevision.issue_id == issue_id)
            .order_by(IssueRevision.id.desc())
        )
    )


def get_revision(session: Session, issue_id: int | None, revision_id: int) -> IssueRevision:
    """Return one revision of an issue (or a kept text of a draft not yet created)."""
    row = session.get(IssueRevision, revision_id)
    if row is None or row.issue_id != issue_id:
        raise NotFound(f"No revision {revision_id} here.")
    return row
