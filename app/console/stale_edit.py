"""Saving over someone else's save: the version a form was opened at, and what to say."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.issues import service
from app.issues.schemas import IssuePatch
from app.models import Issue
from app.rendering.compile import Renderer

STALE = (
    "Someone else saved this issue while you were editing it, so your changes are not saved "
    "yet. Their saved text is shown first, yours is still in the form: merge what you need "
    "into your text and save again."
)


def form_version(raw: str) -> int | None:
    """Return the version a form was opened at (None: a form without one saves as before)."""
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


def save_form(
    session: Session, issue_id: int, patch: IssuePatch, renderer: Renderer, version: str
) -> Issue:
    """Save a console form at the version it was opened at (PreconditionFailed if stale).

    A form that reaches the server twice (a re-sent POST, a double click) is saved, not a
    conflict with the editor's own text.
    """
    return service.update_issue(
        session,
        issue_id,
        patch,
        renderer,
        if_version=form_version(version),
        repeat_is_saved=True,
    )
