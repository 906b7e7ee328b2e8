"""Drafts that are never lost: autosave while typing, revisions to restore, text kept on sign-in."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, Response

from app.console.kept_text import MARKDOWN_MAX
from app.console.newsletter_choice import into
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
from app.issues.revisions import get_revision, list_revisions, record_revision
from app.issues.schemas import IssuePatch
from app.models import Issue, IssueStatus, utcnow

router = APIRouter(
    route_class=ConsoleRoute,
    prefix=f"{PREFIX}/issues",
    include_in_schema=False,
    dependencies=[Depends(signed_in)],
)


def _saved(issue: Issue, revision_id: int, *, applied: bool, problem: str | None) -> JSONResponse:
    body: dict[str, Any] = {
        "saved": True,
        "applied": applied,
        "problem": problem,
        "id": issue.id,
        "revision": revision_id,
        "updated_at": issue.updated_at.isoformat(),
        "edit_url": f"{PREFIX}/issues/{issue.id}/edit",
        "autosave_url": f"{PREFIX}/issues/{issue.id}/autosave",
    }
    version = getattr(issue, "version", None)  # the edit form's version, when issues carry one
    if version is not None:
        body["version"] = version
    return JSONResponse(body)


@router.post("/autosave")
def autosave_new(
    session: SessionDep,
    ctx: ContextDep,
    editor: EditorDep,
    markdown: Annotated[str, Form(max_length=MARKDOWN_MAX)] = "",
    newsletter: Annotated[str, Form(max_length=80)] = "",
) -> JSONResponse:
    """Create the draft from the first text that reads as an issue (the browser keeps the rest)."""
    try:
        data = into(parse_issue_markdown(markdown), newsletter)
        issue = service.create_issue(session, data, ctx.renderer)
    except DomainError as exc:
        session.rollback()
        return JSONResponse({"saved": False, "applied": False, "problem": exc.message})
    row = record_revision(session, issue.id, editor.editor_id, markdown, "autosave", utcnow())
    return _saved(issue, row.id, applied=True, problem=None)


@router.post("/{issue_id}/autosave")
def autosave(
    issue_id: int,
    session: SessionDep,
    ctx: ContextDep,
    editor: EditorDep,
    markdown: Annotated[str, Form(max_length=MARKDOWN_MAX)] = "",
    version: Annotated[str, Form(max_length=20)] = "",
) -> JSONResponse:
    """Keep the text as a revision; a draft whose text reads well takes it at once.

    A scheduled issue is not changed behind the editor's back (half-typed text could go out):
    its revisions wait for the Save button. Nor is another editor's save overwritten: the form's
    version must still be the issue's, else the text is kept as a revision only.
    """
    issue = service.get_issue(session, issue_id)
    now = utcnow()
    if issue.status not in (IssueStatus.draft, IssueStatus.scheduled):
        body = {"saved": False, "problem": f"The issue is {issue.status}; it no longer changes."}
        return JSONResponse(body, status_code=409)
    problem: str | None = None
    applied = False
    if issue.status == IssueStatus.draft:
        try:
            with session.begin_nested():
                data = parse_issue_markdown(markdown)
                patch = IssuePatch(
                    subject=data.subject, preheader=data.preheader, blocks=data.blocks
                )
                if data.slug:
                    patch.slug = data.slug
                wanted = int(version) if version.isdigit() and len(version) < 10 else None
                service.update_issue(session, issue_id, patch, ctx.renderer, if_version=wanted)
            applied = True
        except PreconditionFailed:
            problem = "Someone else saved this issue meanwhile; reload to compare."
            session.refresh(issue)
        except DomainError as exc:
            problem = exc.message
            session.refresh(issue)
    else:
        problem = "Scheduled issues change only when you press Save changes."
    row = record_revision(session, issue_id, editor.editor_id, markdown, "autosave", now)
    return _saved(issue, row.id, applied=applied, problem=problem)


@router.get("/{issue_id}/revisions")
def revisions(issue_id: int, request: Request, session: SessionDep, _: EditorDep) -> Response:
    """List an issue's revisions, newest first."""
    issue = service.get_issue(session, issue_id)
    return render(
        request,
        "revisions.html",
        section="issues",
        issue=issue,
        rows=list_revisions(session, issue_id),
        current=issue_to_markdown(issue),
        notice="The revision is restored." if request.query_params.get("done") else None,
    )


@router.get("/{issue_id}/revisions/{revision_id}")
def revision(
    issue_id: int, revision_id: int, request: Request, session: SessionDep, _: EditorDep
) -> Response:
    """Show one revision's text with a button to restore it."""
    issue = service.get_issue(session, issue_id)
    return render(
        request,
        "revision.html",
        section="issues",
        issue=issue,
        row=get_revision(session, issue_id, revision_id),
        editable=issue.status in (IssueStatus.draft, IssueStatus.scheduled),
        error=(
            "Someone saved this issue after you opened this revision, so it was not restored. "
            "Their text is the issue's now (and the newest of its revisions): restore again "
            "to replace it."
            if request.query_params.get("stale")
            else None
        ),
    )


@router.post("/{issue_id}/revisions/{revision_id}/restore")
def restore(
    issue_id: int,
    revision_id: int,
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    editor: EditorDep,
    version: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Make a revision the issue's text again; what it replaces is kept as a revision first.

    The form names the version of the issue it was opened at: a save made since (a colleague's)
    is not replaced unseen; the revision page says so and shows the text as it is now.
    """
    issue = service.get_issue(session, issue_id)
    row = get_revision(session, issue_id, revision_id)
    now = utcnow()
    record_revision(session, issue_id, editor.editor_id, issue_to_markdown(issue), "save", now)
    try:
        data = parse_issue_markdown(row.markdown)
        patch = IssuePatch(subject=data.subject, preheader=data.preheader, blocks=data.blocks)
        if data.slug:
            patch.slug = data.slug  # as a save of the same text would
        wanted = int(version) if version.isdigit() and len(version) < 10 else None
        service.update_issue(session, issue_id, patch, ctx.renderer, if_version=wanted)
    except PreconditionFailed:
        session.rollback()
        return redirect(f"{PREFIX}/issues/{issue_id}/revisions/{revision_id}?stale=1")
    except DomainError:
        session.rollback()
        # Text that does not read as an issue yet opens in the editor, to be fixed there.
        return redirect(f"{PREFIX}/issues/{issue_id}/edit?revision={revision_id}")
    record_revision(session, issue_id, editor.editor_id, row.markdown, "restore", now)
    return redirect(f"{PREFIX}/issues/{issue_id}/revisions?done=restored")
