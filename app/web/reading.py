"""Reader-facing pages about issues: the home page, the archive, an issue's web page, the feed."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from feedgen.feed import FeedGenerator

from app.config import Settings
from app.deps import ContextDep, SessionDep
from app.issues import archive, summary
from app.issues.summary import IssueEntry
from app.models import Issue
from app.rendering import html as htmlpost
from app.web.pages import render_page, templates

router = APIRouter(tags=["public"])

HOME_ISSUES = 5
FEED_ISSUES = 50
FEED_TYPE = "application/atom+xml"


def _entries(issues: list[Issue]) -> list[IssueEntry]:
    return [summary.entry(issue) for issue in issues]


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep) -> Response:
    """Show the newsletter's front page: name, tagline, sign-up, the latest issues."""
    entries = _entries(archive.published_issues(session, limit=HOME_ISSUES))
    return render_page(request, "home.html", entries=entries)


@router.get("/archive", response_class=HTMLResponse)
def archive_list(request: Request, session: SessionDep) -> Response:
    """List published issues, newest first, with their own date and an excerpt."""
    return render_page(request, "archive.html", entries=_entries(archive.published_issues(session)))


@router.get("/archive/feed.xml")
def feed(ctx: ContextDep, session: SessionDep) -> Response:
    """Return an Atom feed of published issues."""
    entries = _entries(archive.published_issues(session, limit=FEED_ISSUES))
    return Response(
        atom_feed(ctx.settings, entries),
        media_type=FEED_TYPE,
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get("/archive/{slug}", response_class=HTMLResponse)
def archive_issue(slug: str, request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Return the web version of one published issue inside the site's header and sign-up call."""
    issue = archive.published_issue(session, slug)
    page = archive.web_version(ctx.renderer, issue)
    entry = summary.entry(issue)
    settings = ctx.settings
    chrome = {
        "request": request,
        "newsletter_name": settings.newsletter_name,
        "entry": entry,
    }
    head = htmlpost.meta_tags(
        [
            ("name", "twitter:card", "summary"),
            ("name", "twitter:title", issue.subject),
            ("name", "twitter:description", entry.excerpt),
            ("property", "article:published_time", entry.when.isoformat()),
        ]
    )
    head += (
        f'<link rel="alternate" type="{FEED_TYPE}" href="/archive/feed.xml">'
        '<link rel="stylesheet" href="/static/issue.css">'
        '<script src="/static/timezone.js" defer></script>'
    )
    page = htmlpost.add_to_head(page, head)
    page = _after_body_open(page, templates.get_template("_issue_header.html").render(chrome))
    page = page.replace("</body>", templates.get_template("_issue_signup.html").render(chrome), 1)
    return HTMLResponse(page, headers={"Cache-Control": "public, max-age=300"})


def atom_feed(settings: Settings, entries: list[IssueEntry]) -> bytes:
    """Return the Atom XML of these issues, dated by each issue's own date."""
    base = settings.base_url
    fg = FeedGenerator()
    fg.id(f"{base}/archive")
    fg.title(settings.newsletter_name)
    fg.subtitle(settings.newsletter_tagline or settings.newsletter_name)
    fg.author({"name": settings.newsletter_name})
    fg.link(href=f"{base}/", rel="alternate")
    fg.link(href=f"{base}/archive/feed.xml", rel="self")
    fg.language("en")
    # Newest last: feedgen prepends by default, which would reverse our newest-first list.
    for item in reversed(entries):
        fe = fg.add_entry()
        url = f"{base}/archive/{item.slug}"
        fe.id(url)
        fe.title(item.title)
        fe.link(href=url, rel="alternate")
        fe.summary(item.excerpt or item.title)
        fe.published(item.when)
        fe.updated(item.when)
    if entries:
        fg.updated(max(e.when for e in entries))
    result: bytes = fg.atom_str(pretty=True)
    return result


def _after_body_open(page: str, markup: str) -> str:
    start = page.find("<body")
    end = page.find(">", start) if start >= 0 else -1
    if end < 0:
        return markup + page
    return page[: end + 1] + markup + page[end + 1 :]
