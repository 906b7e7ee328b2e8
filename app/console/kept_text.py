"""Text kept across an ended session: stored once the editor signs in again, then shown back."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.console.return_to import kept_text_target, safe_next
from app.issues.revisions import record_revision

MARKDOWN_MAX = 500_000


def after_sign_in(
    session: Session, editor_id: int, next_path: str, markdown: str | None, now: datetime
) -> str:
    """Return where to go after sign-in; text brought along is kept as a revision first.

    The text is stored only now, after the password was checked, so a signed-out visitor
    cannot write to the database; the editor's form opens with it, not yet applied.
    """
    target = safe_next(next_path)
    is_form, issue_id = kept_text_target(target)
    if markdown is None or not is_form:
        return target
    row = record_revision(session, issue_id, editor_id, markdown, "stash", now)
    return f"{target.split('?', 1)[0]}?revision={row.id}"
