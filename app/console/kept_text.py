"""Text kept across an ended session: stored once the editor signs in again, then shown back."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.console.return_to import NEW_FORM, kept_text_target, safe_next
from app.console.stale_edit import form_version
from app.issues.revisions import record_revision
from app.models import Issue

MARKDOWN_MAX = 500_000


def after_sign_in(
    session: Session,
    editor_id: int,
    next_path: str,
    markdown: str | None,
    now: datetime,
    version: str = "",
) -> str:
    """Return where to go after sign-in; text brought along is kept as a revision first.

    The text is stored only now, after the password was checked, so a signed-out visitor
    cannot write to the database; the editor's form opens with it, not yet applied.
    """
    target = safe_next(next_path)
    is_form, issue_id = kept_text_target(target)
    if markdown is None or not is_form:
        return target
    if issue_id is not None and session.get(Issue, issue_id) is None:
        # The issue was deleted meanwhile: the text opens as a new draft rather than being
        # refused with the sign-in (a revision cannot name an issue that is gone).
        issue_id, target = None, NEW_FORM
    row = record_revision(session, issue_id, editor_id, markdown, "stash", now)
    back = f"{target.split('?', 1)[0]}?revision={row.id}"
    if issue_id is not None and form_version(version) is not None:
        # The version the text was written against: saving it must not silently replace a
        # save made while the session was ended.
        back += f"&version={version}"
    return back
