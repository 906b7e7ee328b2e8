"""Console previews of an issue: the editor's live frame, the phone and desktop page, the HTML."""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.audience.newsletters.lookup import by_slug
from app.console.kept_text import MARKDOWN_MAX
from app.console.preflight_view import checklist
from app.console.web import PREFIX, ConsoleRoute, EditorDep, SessionDep, render, signed_in
from app.deps import ContextDep
from app.errors import DomainError
from app.issues import service
from app.issues.markdown_format import parse_issue_markdown
from app.models import Issue
from app.rendering.blocks import parse_blocks
from app.rendering.compile import QR_CID

router = APIRouter(
    route_class=ConsoleRoute,
    prefix=f"{PREFIX}/issues",
    include_in_schema=False,
    dependencies=[Depends(signed_in)],
)


@router.post("/preview-markdown")
def preview_markdown(
    session: SessionDep,
    ctx: ContextDep,
    _: EditorDep,
    markdown: Annotated[str, Form(max_length=MARKDOWN_MAX)] = "",
    newsletter: Annotated[str, Form(max_length=80)] = "",
    issue: Annotated[int | None, Query()] = None,
) -> HTMLResponse:
    """Render Markdown text as the email it would become (shown in the editor's frame).

    It carries the masthead of the newsletter it is written for: the issue's (`?issue=`, the
    edit form) or the one chosen on the new-issue form (`newsletter`), else the default.
    """
    try:
        data = parse_issue_markdown(markdown)
        draft = Issue(
            subject=data.subject,
            preheader=data.preheader,
            slug=data.slug or service.slugify(data.subject),
            blocks=parse_blocks(data.blocks),  # the validation a save runs
            newsletter_id=(
                service.get_issue(session, issue).newsletter_id
                if issue is not None
                else by_slug(session, newsletter or None).id
            ),
        )
        head = service.issue_masthead(session, ctx.renderer, draft)
        html = service.preview_html(ctx.renderer, ctx.tokens, draft, head)
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
    issue = service.get_issue(session, issue_id)
    report = checklist(ctx, session, issue, links=links)  # links are fetched only when asked (slow)
    return render(request, "issue_preview.html", section="issues", issue=issue, preflight=report)


@router.get("/{issue_id}/preview.html")
def preview_html(issue_id: int, session: SessionDep, ctx: ContextDep, _: EditorDep) -> Response:
    """Return the email's HTML exactly as a subscriber sees it (framed by the console)."""
    issue = service.get_issue(session, issue_id)
    head = service.issue_masthead(session, ctx.renderer, issue)
    return HTMLResponse(_framed(service.preview_html(ctx.renderer, ctx.tokens, issue, head)))
