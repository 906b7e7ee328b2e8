"""Reader-facing pages about issues: the home page, the archive, an issue's web page, the feed."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from feedgen.feed import FeedGenerator

from app.config import Settings
from app.context import Context
from app.db import session_scope
from app.issues import archive, summary
from app.issues.summary import IssueEntry
from app.models import Issue
from app.rendering import html as htmlpost
from app.web.cache import PageCache, Render
from app.web.pages import page_html, templates

router = APIRouter(tags=["public"])

HOME_ISSUES = 5
FEED_ISSUES = 50
FEED_TYPE = "application/atom+xml"
HTML_TYPE = "text/html; charset=utf-8"

# These four are what a shared link brings thousands of readers to at once: each is answered
# from the page cache (app.web.cache), so the handlers are `async def` and take no dependency
# that would cost a thread hop per request; the render below runs in a thread, once per change.


def _entries(issues: list[Issue]) -> list[IssueEntry]:
    return [summary.entry(issue) for issue in issues]


def _context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


async def _answer(request: Request, render: Render) -> Response:
    # Kept under the path: app.web.cache.CachedPages answers the next GET of it before routing.
    cache: PageCache = request.app.state.pages
    page = await cache.page(request.scope["path"], render)
    return page.response(request.headers)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    """Show the newsletter's front page: name, tagline, sign-up, the latest issues."""
    return await _answer(request, lambda: _home(request))


@router.get("/archive", response_class=HTMLResponse)
async def archive_list(request: Request) -> Response:
    """List published issues, newest first, with their own date and an excerpt."""
    return await _answer(request, lambda: _archive(request))


@router.get("/archive/feed.xml")
async def feed(request: Request) -> Response:
    """Return an Atom feed of published issues."""
    return await _answer(request, lambda: _feed(_context(request)))


@router.get("/archive/{slug}", response_class=HTMLResponse)
async def archive_issue(slug: str, request: Request) -> Response:
    """Return the web version of one published issue inside the site's header and sign-up call."""
    return await _answer(request, lambda: _issue(request, slug))


def _home(request: Request) -> tuple[bytes, str]:
    with session_scope(_context(request).reads) as session:
        entries = _entries(archive.published_issues(session, limit=HOME_ISSUES))
    return page_html(request, "home.html", entries=entries), HTML_TYPE


def _archive(request: Request) -> tuple[bytes, str]:
    with session_scope(_context(request).reads) as session:
        entries = _entries(archive.published_issues(session))
    return page_html(request, "archive.html", entries=entries), HTML_TYPE


def _feed(ctx: Context) -> tuple[bytes, str]:
    with session_scope(ctx.reads) as session:
        entries = _entries(archive.published_issues(session, limit=FEED_ISSUES))
    return atom_feed(ctx.settings, entries), FEED_TYPE


def _issue(request: Request, slug: str) -> tuple[bytes, str]:
    ctx = _context(request)
    with session_scope(ctx.reads) as session:
        issue = archive.published_issue(session, slug)
        page = archive.web_version(ctx.renderer, issue)
        entry = summary.entry(issue)
        subject = issue.subject
    settings = ctx.settings
    chrome = {
        "request": request,
        "newsletter_name": settings.newsletter_name,
        "entry": entry,
    }
    head = htmlpost.meta_tags(
        [
            ("name", "twitter:card", "summary"),
            ("name", "twitter:title", subject),
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
    return page.encode("utf-8"), HTML_TYPE


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
