"""Reader-facing pages about issues: the home page, the archive, an issue's web page, the feed."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from feedgen.feed import FeedGenerator
from sqlalchemy.orm import Session

from app.audience import newsletters
from app.config import Settings
from app.context import Context
from app.db import session_scope
from app.errors import NotFound
from app.issues import archive, summary
from app.issues.summary import IssueEntry
from app.models import Issue
from app.rendering import html as htmlpost
from app.rendering.masthead import Masthead
from app.web.cache import PageCache, Render
from app.web.methods import page_route
from app.web.pages import identity, page_html, templates

router = APIRouter(tags=["public"])

HOME_ISSUES = 5
FEED_ISSUES = 50
FEED_TYPE = "application/atom+xml"
HTML_TYPE = "text/html; charset=utf-8"

# These four are what a shared link brings thousands of readers to at once: each is answered
# from the page cache (app.web.cache), so the handlers are `async def` and take no dependency
# that would cost a thread hop per request; the render below runs in a thread, once per change.


def _entries(issues: list[Issue], head: Masthead) -> list[IssueEntry]:
    return [summary.entry(issue, head.name) for issue in issues]


def _context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


async def answer(request: Request, render: Render) -> Response:
    """Answer from the page cache, rendering under this path when the page is stale."""
    # Kept under the path: app.web.cache.CachedPages answers the next GET of it before routing.
    cache: PageCache = request.app.state.pages
    page = await cache.page(request.scope["path"], render)
    return page.response(request.headers)


class Moved(Exception):
    """The page lives at another address (an issue of another newsletter under /archive/)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


@page_route(router, "/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    """Show the newsletter's front page: name, tagline, sign-up, the latest issues."""
    return await answer(request, lambda: render_home(request, None))


@page_route(router, "/archive", response_class=HTMLResponse)
async def archive_list(request: Request) -> Response:
    """List published issues, newest first, with their own date and an excerpt."""
    return await answer(request, lambda: render_archive(request, None))


@page_route(router, "/archive/feed.xml")
async def feed(request: Request) -> Response:
    """Return an Atom feed of published issues."""
    return await answer(request, lambda: render_feed(_context(request), None))


@page_route(router, "/archive/{slug}", response_class=HTMLResponse)
async def archive_issue(slug: str, request: Request) -> Response:
    """Return the web version of one published issue inside the site's header and sign-up call."""
    try:
        return await answer(request, lambda: render_issue(request, None, slug))
    except Moved as moved:
        # An issue of another newsletter: every link already sent to /archive/x keeps working.
        return RedirectResponse(moved.location, status_code=301)


def _masthead(session: Session, ctx: Context, newsletter: str | None) -> Masthead:
    head = newsletters.masthead_of(session, ctx.settings, newsletter)
    if head is None:
        raise NotFound("There is no such newsletter.")
    return head


def render_home(request: Request, newsletter: str | None) -> tuple[bytes, str]:
    """Render a newsletter's home page (None: the default newsletter)."""
    ctx = _context(request)
    with session_scope(ctx.reads) as session:
        head = _masthead(session, ctx, newsletter)
        entries = _entries(archive.published_issues(session, head.id, limit=HOME_ISSUES), head)
    return page_html(request, "home.html", entries=entries, **identity(head)), HTML_TYPE


def render_archive(request: Request, newsletter: str | None) -> tuple[bytes, str]:
    """Render a newsletter's archive (None: the default newsletter)."""
    ctx = _context(request)
    with session_scope(ctx.reads) as session:
        head = _masthead(session, ctx, newsletter)
        entries = _entries(archive.published_issues(session, head.id), head)
    return page_html(request, "archive.html", entries=entries, **identity(head)), HTML_TYPE


def render_feed(ctx: Context, newsletter: str | None) -> tuple[bytes, str]:
    """Render a newsletter's Atom feed (None: the default newsletter)."""
    with session_scope(ctx.reads) as session:
        head = _masthead(session, ctx, newsletter)
        entries = _entries(archive.published_issues(session, head.id, limit=FEED_ISSUES), head)
    return atom_feed(ctx.settings, head, entries), FEED_TYPE


def render_issue(request: Request, newsletter: str | None, slug: str) -> tuple[bytes, str]:
    """Render the web version of an issue of a newsletter (None: the default newsletter)."""
    ctx = _context(request)
    with session_scope(ctx.reads) as session:
        head = _masthead(session, ctx, newsletter)
        issue = archive.published_issue(session, slug)
        if issue.newsletter_id != head.id:
            if newsletter is not None:
                raise NotFound("There is no published issue at this address.")
            own = newsletters.masthead_by_id(session, ctx.settings, issue.newsletter_id)
            raise Moved(own.issue_path(issue.slug))
        page = archive.web_version(ctx.renderer, issue, head)
        entry = summary.entry(issue, head.name)
        subject = entry.title
    chrome = {"request": request, "entry": entry, **identity(head)}
    head_tags = htmlpost.meta_tags(
        [
            ("name", "twitter:card", "summary"),
            ("name", "twitter:title", subject),
            ("name", "twitter:description", entry.excerpt),
            ("property", "article:published_time", entry.when.isoformat()),
        ]
    )
    head_tags += (
        f'<link rel="alternate" type="{FEED_TYPE}" href="{head.feed_path}">'
        '<link rel="stylesheet" href="/static/issue.css">'
        '<script src="/static/timezone.js" defer></script>'
    )
    page = htmlpost.add_to_head(page, head_tags)
    page = _after_body_open(page, templates.get_template("_issue_header.html").render(chrome))
    page = page.replace("</body>", templates.get_template("_issue_signup.html").render(chrome), 1)
    return page.encode("utf-8"), HTML_TYPE


# What XML 1.0 cannot carry at all (lxml refuses it): a control character stored before the
# newsletter fields refused them would otherwise make the feed a 500 until someone edits it.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _xml(text: str) -> str:
    return _NOT_XML.sub("", text)


def atom_feed(settings: Settings, head: Masthead, entries: list[IssueEntry]) -> bytes:
    """Return the Atom XML of a newsletter's issues, dated by each issue's own date."""
    base = settings.base_url
    fg = FeedGenerator()
    fg.id(f"{base}{head.archive_path}")
    fg.title(_xml(head.name))
    fg.subtitle(_xml(head.tagline or head.name))
    fg.author({"name": _xml(head.name)})
    fg.link(href=f"{base}{head.home_path}", rel="alternate")
    fg.link(href=f"{base}{head.feed_path}", rel="self")
    fg.language("en")
    # Newest last: feedgen prepends by default, which would reverse our newest-first list.
    for item in reversed(entries):
        fe = fg.add_entry()
        url = f"{base}{head.issue_path(item.slug)}"
        fe.id(url)
        fe.title(_xml(item.title))
        fe.link(href=url, rel="alternate")
        fe.summary(_xml(item.excerpt or item.title))
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
