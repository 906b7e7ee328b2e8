"""Console Markdown editor for issues: the new-issue form, creating, editing, saving."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response

from app.console.issue_notices import done_notice
from app.console.kept_text import MARKDOWN_MAX
from app.console.newsletter_choice import into, switcher
from app.console.stale_edit import STALE, form_version, save_form
from app.console.web import (
    PREFIX,
    ConsoleRoute,
    EditorDep,
    SessionDep,
    redirect,
    render,
    signed_in,
)
from app.deps import ContextDep
from app.errors import DomainError, PreconditionFailed
from app.issues import service
from app.issues.markdown_format import issue_to_markdown, parse_issue_markdown
from app.issues.revisions import get_revision, record_revision
from app.issues.schemas import IssuePatch
from app.models import utcnow

router = APIRouter(
    route_class=ConsoleRoute,
    prefix=f"{PREFIX}/issues",
    include_in_schema=False,
    dependencies=[Depends(signed_in)],
)


NEW_ISSUE = """---
subject: The AI Morning Post
preheader: One line that inboxes show next to the subject
---
## Today's lead story {lead}
Write the lead here. **Bold**, _italic_ and [links](https://example.org) work.

## By the Numbers {stats}
- **42** a number worth knowing

## Subscribe to The AI Morning Post {subscribe}
Get daily AI insights delivered every morning.
"""

KEPT = "This is the text you were writing when your session ended, back in the form."

KEPT_STALE = (
    "Someone else saved this issue while your session was ended. Their saved text is shown "
    "first; yours is in the form and not saved. Merge what you need into yours: Save then asks "
    "once more before it replaces theirs."
)

UNSAVED_REVISION = "A revision's text, back in the form: it saves as you type or with Save."


@router.get("/new")
def new_issue(
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    _: EditorDep,
    revision: Annotated[int | None, Query()] = None,
    newsletter: Annotated[str, Query(max_length=80)] = "",
) -> Response:
    """Show an empty Markdown editor with a small sample (or text kept when a session ended)."""
    markdown, notice = NEW_ISSUE, None
    if revision is not None:
        markdown, notice = get_revision(session, None, revision).markdown, KEPT
    return render(
        request,
        "issue_edit.html",
        section="issues",
        switcher=switcher(session, ctx.settings, request.url.path, newsletter),
        issue=None,
        markdown=markdown,
        error=None,
        notice=notice,
        kept=revision is not None,
    )


@router.post("")
def create_issue(
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    editor: EditorDep,
    markdown: Annotated[str, Form(max_length=MARKDOWN_MAX)] = "",
    newsletter: Annotated[str, Form(max_length=80)] = "",
) -> Response:
    """Create a draft from the Markdown text; a mistake comes back with the line named."""
    try:
        data = into(parse_issue_markdown(markdown), newsletter)
        issue = service.create_issue(session, data, ctx.renderer)
        record_revision(session, issue.id, editor.editor_id, markdown, "save", utcnow())
    except DomainError as exc:
        session.rollback()
        return render(
            request,
            "issue_edit.html",
            status_code=exc.status,
            section="issues",
            switcher=switcher(session, ctx.settings, f"{PREFIX}/issues/new", newsletter),
            issue=None,
            markdown=markdown,
            error=exc.message,
        )
    return redirect(f"{PREFIX}/issues/{issue.id}?done=created")


@router.get("/{issue_id}/edit")
def edit_issue(
    issue_id: int,
    request: Request,
    session: SessionDep,
    _: EditorDep,
    revision: Annotated[int | None, Query()] = None,
    version: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """Show the Markdown editor for a draft or scheduled issue (or a revision's text in it).

    Text kept across a sign-in names the version it was written against (`version`): if the
    issue was saved since, the form keeps that version and shows the saved text beside it.
    """
    issue = service.get_issue(session, issue_id)
    markdown, notice = issue_to_markdown(issue), done_notice(request)
    opened_at = issue.version
    if revision is not None:
        row = get_revision(session, issue_id, revision)
        markdown = row.markdown
        notice = KEPT if row.source == "stash" else UNSAVED_REVISION
        opened_at = form_version(version) or issue.version
    stale = opened_at != issue.version
    return render(
        request,
        "issue_edit.html",
        section="issues",
        issue=issue,
        markdown=markdown,
        version=opened_at,
        theirs=issue_to_markdown(issue) if stale else None,
        error=KEPT_STALE if stale else None,
        notice=notice,
        kept=revision is not None,
    )


@router.post("/{issue_id}/edit")
def save_issue(
    issue_id: int,
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    editor: EditorDep,
    markdown: Annotated[str, Form(max_length=MARKDOWN_MAX)] = "",
    version: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Save the Markdown text over the issue's subject, preheader and blocks.

    The form carries the version it was opened at: if someone saved since, nothing is
    overwritten; the page shows their saved text beside this editor's, which stays in the form.
    """
    try:
        data = parse_issue_markdown(markdown)
        patch = IssuePatch(subject=data.subject, preheader=data.preheader, blocks=data.blocks)
        if data.slug:
            patch.slug = data.slug
        save_form(session, issue_id, patch, ctx.renderer, version)
        record_revision(session, issue_id, editor.editor_id, markdown, "save", utcnow())
    except DomainError as exc:
        session.rollback()
        issue = service.get_issue(session, issue_id)
        stale = isinstance(exc, PreconditionFailed)
        return render(
            request,
            "issue_edit.html",
            status_code=409 if stale else exc.status,
            section="issues",
            issue=issue,
            markdown=markdown,
            # After a conflict the form names the saved version: saving again is deliberate.
            version=issue.version if stale else version,
            theirs=issue_to_markdown(issue) if stale else None,
            error=STALE if stale else exc.message,
        )
    return redirect(f"{PREFIX}/issues/{issue_id}?done=saved")
