"""Console pages for issues: list, write in Markdown, preview, check, test, schedule, send."""

from __future__ import annotations

from datetime import timedelta
from html import escape
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app.console import block_form
from app.console.audience_choice import segments_for
from app.console.kept_text import MARKDOWN_MAX
from app.console.newsletter_choice import into, switcher
from app.console.preflight_view import checklist
from app.console.queries import find_issues
from app.console.web import (
    PREFIX,
    ConsoleRoute,
    EditorDep,
    SessionDep,
    posted_form,
    redirect,
    render,
    signed_in,
)
from app.context import Context
from app.deps import ContextDep
from app.errors import DomainError, PreconditionFailed
from app.issues import service
from app.issues.duplicate import copy_subject, next_edition_blocks
from app.issues.markdown_format import issue_to_markdown, parse_issue_markdown
from app.issues.revisions import get_revision, record_revision
from app.issues.schemas import IssueIn, IssuePatch
from app.issues.summary import issue_date_text
from app.models import Issue, IssueStatus, utcnow
from app.rendering.blocks import BLOCK_TYPES, parse_blocks
from app.rendering.compile import QR_CID

router = APIRouter(
    route_class=ConsoleRoute,
    prefix=f"{PREFIX}/issues",
    include_in_schema=False,
    dependencies=[Depends(signed_in)],
)

NOTICES = {
    "created": "The draft is saved.",
    "saved": "Your changes are saved.",
    "test": "A test copy is on its way.",
    "scheduled": "The issue is scheduled.",
    "local": "Each reader gets the issue at that time in their own time zone; "
    "those whose moment has passed get it now.",
    "sending": "The send has started.",
    "paused": "The send is paused; nothing more goes out until you resume it.",
    "resumed": "The send continues where it stopped.",
    "cancelled": "The send is cancelled; unsent copies will not go out.",
    "deleted": "The draft is deleted.",
    "duplicated": "A new draft from that issue, its masthead dated the next morning.",
}
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


STALE = (
    "Someone else saved this issue while you were editing it, so your changes are not saved "
    "yet. Their saved text is shown first, yours is still in the form: merge what you need "
    "into your text and save again."
)


def _notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("done", ""))


@router.get("")
def issue_list(
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    _: EditorDep,
    q: Annotated[str, Query(max_length=200)] = "",
    status: Annotated[str, Query(max_length=16)] = "",
    newsletter: Annotated[str, Query(max_length=80)] = "",
) -> Response:
    """List issues newest first (of the chosen newsletter), with date and slug; search, filter."""
    menu = switcher(session, ctx.settings, request.url.path, newsletter)
    issues = find_issues(session, q=q, status=status, newsletter_id=menu.chosen_id)
    return render(
        request,
        "issues.html",
        section="issues",
        switcher=menu,
        issues=issues,
        dates={i.id: issue_date_text(i.blocks) for i in issues},
        q=q,
        status=status,
        statuses=[s.value for s in IssueStatus],
        notice=_notice(request),
    )


KEPT = "This is the text you were writing when your session ended, back in the form."
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


@router.post("/preview-markdown")
def preview_markdown(
    ctx: ContextDep, _: EditorDep, markdown: Annotated[str, Form(max_length=MARKDOWN_MAX)] = ""
) -> HTMLResponse:
    """Render Markdown text as the email it would become (shown in the editor's frame)."""
    try:
        data = parse_issue_markdown(markdown)
        draft = Issue(
            subject=data.subject,
            preheader=data.preheader,
            slug=data.slug or service.slugify(data.subject),
            blocks=parse_blocks(data.blocks),  # the validation a save runs
        )
        html = service.preview_html(ctx.renderer, ctx.tokens, draft)
    except DomainError as exc:
        return HTMLResponse(_problem_page(exc.message), status_code=200)
    return HTMLResponse(_framed(html))


def _framed(html: str) -> str:
    # In a mail client the QR code is an attachment named by Content-ID; a browser frame
    # needs a URL, and the sign-up page serves the same image.
    return html.replace(f'src="cid:{QR_CID}"', 'src="/subscribe/qr.png"')


def _problem_page(message: str) -> str:
    return (
        '<!doctype html><meta charset="utf-8"><title>Not yet</title>'
        '<body style="font:16px/1.5 system-ui,sans-serif;margin:1.5rem;color:#8a2a17">'
        f"<p><strong>The preview waits for a fix:</strong></p><p>{escape(message)}</p></body>"
    )


def _issue_or_404(session: Session, issue_id: int) -> Issue:
    return service.get_issue(session, issue_id)


def issue_page(
    request: Request,
    session: Session,
    ctx: Context,
    issue_id: int,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    """Render an issue's page: status, actions, the pre-send check."""
    issue = _issue_or_404(session, issue_id)
    findings = service.pre_send_check(ctx.renderer, issue, session)
    stats = service.stats(session, issue_id) if issue.status != IssueStatus.draft else None
    sendable = issue.status in (IssueStatus.draft, IssueStatus.scheduled)
    return render(
        request,
        "issue.html",
        status_code=status,
        section="issues",
        issue=issue,
        findings=findings,
        blocked=any(f.level == "error" for f in findings),
        stats=stats,
        notice=_notice(request),
        error=error,
        now=utcnow(),
        one_day=timedelta(days=1),
        segments=segments_for(session, issue) if sendable else [],
        newsletter_of_issue=service.issue_masthead(session, ctx.renderer, issue).name,
    )


@router.get("/{issue_id}")
def show_issue(
    issue_id: int, request: Request, session: SessionDep, ctx: ContextDep, _: EditorDep
) -> Response:
    """Show one issue with what can be done with it now."""
    return issue_page(request, session, ctx, issue_id)


@router.get("/{issue_id}/edit")
def edit_issue(
    issue_id: int,
    request: Request,
    session: SessionDep,
    _: EditorDep,
    revision: Annotated[int | None, Query()] = None,
) -> Response:
    """Show the Markdown editor for a draft or scheduled issue (or a revision's text in it)."""
    issue = _issue_or_404(session, issue_id)
    markdown, notice = issue_to_markdown(issue), _notice(request)
    if revision is not None:
        row = get_revision(session, issue_id, revision)
        markdown = row.markdown
        notice = KEPT if row.source == "stash" else UNSAVED_REVISION
    return render(
        request,
        "issue_edit.html",
        section="issues",
        issue=issue,
        markdown=markdown,
        version=issue.version,
        error=None,
        notice=notice,
        kept=revision is not None,
    )


def _form_version(raw: str) -> int | None:
    """Return the version a form was opened at (None: a form without one saves as before)."""
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


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
        service.update_issue(
            session, issue_id, patch, ctx.renderer, if_version=_form_version(version)
        )
        record_revision(session, issue_id, editor.editor_id, markdown, "save", utcnow())
    except DomainError as exc:
        session.rollback()
        issue = _issue_or_404(session, issue_id)
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


@router.post("/{issue_id}/duplicate")
def duplicate_issue(issue_id: int, session: SessionDep, ctx: ContextDep, _: EditorDep) -> Response:
    """Start a new draft from an issue's subject, preheader and blocks (tomorrow's edition)."""
    source = _issue_or_404(session, issue_id)
    copy = service.create_issue(
        session,
        IssueIn(
            subject=copy_subject(source.subject),
            preheader=source.preheader,
            blocks=next_edition_blocks(source.blocks),
        ),
        ctx.renderer,
    )
    return redirect(f"{PREFIX}/issues/{copy.id}/edit?done=duplicated")


@router.get("/{issue_id}/preview")
def preview_page(
    issue_id: int,
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    _: EditorDep,
    links: bool = False,
) -> Response:
    """Show the email at phone and desktop width side by side, with the preflight checklist."""
    issue = _issue_or_404(session, issue_id)
    report = checklist(ctx, session, issue, links=links)  # links are fetched only when asked (slow)
    return render(request, "issue_preview.html", section="issues", issue=issue, preflight=report)


@router.get("/{issue_id}/preview.html")
def preview_html(issue_id: int, session: SessionDep, ctx: ContextDep, _: EditorDep) -> Response:
    """Return the email's HTML exactly as a subscriber sees it (framed by the console)."""
    issue = _issue_or_404(session, issue_id)
    head = service.issue_masthead(session, ctx.renderer, issue)
    return HTMLResponse(_framed(service.preview_html(ctx.renderer, ctx.tokens, issue, head)))


@router.get("/{issue_id}/blocks")
def edit_blocks(issue_id: int, request: Request, session: SessionDep, _: EditorDep) -> Response:
    """Show the block-by-block editor: one form section per block."""
    issue = _issue_or_404(session, issue_id)
    sections = [block_form.to_form(b) for b in issue.blocks]
    return _blocks_page(
        request, issue, issue.subject, issue.preheader, sections, version=str(issue.version)
    )


def _blocks_page(
    request: Request,
    issue: Issue,
    subject: str,
    preheader: str,
    sections: list[block_form.BlockForm],
    *,
    version: str,
    error: str | None = None,
    status: int = 200,
    theirs: str | None = None,
) -> Response:
    return render(
        request,
        "issue_blocks.html",
        status_code=status,
        section="issues",
        issue=issue,
        subject=subject,
        preheader=preheader,
        sections=sections,
        block_types=BLOCK_TYPES,
        version=version,
        theirs=theirs,
        error=error,
    )


@router.post("/{issue_id}/blocks")
def save_blocks(
    issue_id: int,
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    _: EditorDep,
    form: Annotated[FormData, Depends(posted_form)],
) -> Response:
    """Apply removals and the new order; add a block, or save everything."""
    issue = _issue_or_404(session, issue_id)
    subject = str(form.get("subject") or "")[:300]
    preheader = str(form.get("preheader") or "")[:300]
    version = str(form.get("version") or "")[:20]
    try:
        sections = block_form.read_form(form)
    except DomainError as exc:
        return _blocks_page(
            request,
            issue,
            subject,
            preheader,
            [],
            version=version,
            error=exc.message,
            status=exc.status,
        )
    if form.get("action") == "add":
        # Adding changes nothing stored: the new, empty section is filled in first.
        sections.append(block_form.blank(str(form.get("new_type") or "")))
        return _blocks_page(request, issue, subject, preheader, sections, version=version)
    try:
        blocks = [block_form.to_block(s, n) for n, s in enumerate(sections, start=1)]
        patch = IssuePatch(subject=subject, preheader=preheader, blocks=blocks)
        service.update_issue(
            session, issue_id, patch, ctx.renderer, if_version=_form_version(version)
        )
    except ValidationError as exc:
        session.rollback()
        message = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        return _blocks_page(
            request,
            issue,
            subject,
            preheader,
            sections,
            version=version,
            error=message,
            status=422,
        )
    except DomainError as exc:
        session.rollback()
        if isinstance(exc, PreconditionFailed):
            # Nothing is overwritten and nothing typed is lost: their text is shown, these
            # sections stay in the form, which now names the saved version.
            saved = _issue_or_404(session, issue_id)
            return _blocks_page(
                request,
                saved,
                subject,
                preheader,
                sections,
                version=str(saved.version),
                theirs=issue_to_markdown(saved),
                error=STALE,
                status=409,
            )
        return _blocks_page(
            request,
            issue,
            subject,
            preheader,
            sections,
            version=version,
            error=exc.message,
            status=exc.status,
        )
    return redirect(f"{PREFIX}/issues/{issue_id}?done=saved")
