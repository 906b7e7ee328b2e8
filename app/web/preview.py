"""The web preview of an issue not yet sent, opened by a signed link from a test copy."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.deps import ContextDep, SessionDep
from app.errors import NotFound
from app.issues import archive, service
from app.rendering import html as htmlpost
from app.rendering.preview_link import GONE, read_preview_token, same_issue
from app.web.headers import ARCHIVE_CSP
from app.web.pages import templates

router = APIRouter(tags=["public"], include_in_schema=False)


@router.get("/preview/{token}", response_class=HTMLResponse)
def issue_preview(token: str, request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Show the web version of the issue a preview token names, marked as a preview."""
    issue_id, born = read_preview_token(ctx.settings.secret_keys, token)
    issue = service.get_issue(session, issue_id)
    if not same_issue(born, issue.created_at):
        # The draft the link was made for is gone; this is another issue under its id.
        raise NotFound(GONE)
    page = archive.web_version(
        ctx.renderer, issue, service.issue_masthead(session, ctx.renderer, issue)
    )
    banner = templates.get_template("_preview_banner.html").render(
        {"request": request, "issue": issue}
    )
    page = htmlpost.add_to_head(
        page,
        '<meta name="robots" content="noindex"><link rel="stylesheet" href="/static/issue.css">',
    )
    page = page.replace("<body", "<body data-preview", 1)
    start = page.find(">", page.find("<body")) + 1
    page = page[:start] + banner + page[start:]
    return HTMLResponse(
        page,
        headers={
            "Cache-Control": "private, no-store",
            "X-Robots-Tag": "noindex",
            "Content-Security-Policy": ARCHIVE_CSP,  # email HTML: its styles are inline
        },
    )
