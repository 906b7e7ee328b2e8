"""Each newsletter's public pages under /n/<slug>: home, archive, an issue, the feed, its QR.

The sign-up page (/n/<slug>/subscribe) is with the other sign-up forms in app/web/signup.py. The
default newsletter answers here too, with links to its first URLs (/, /archive, …).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from app.web.methods import page_route
from app.web.reading import answer, render_archive, render_feed, render_home, render_issue
from app.web.signup import render_qr

router = APIRouter(tags=["public"])

Slug = Annotated[str, Path(max_length=80)]


@page_route(router, "/n/{slug}", response_class=HTMLResponse)
async def newsletter_home(slug: Slug, request: Request) -> Response:
    """Show a newsletter's front page: name, tagline, sign-up, its latest issues."""
    return await answer(request, lambda: render_home(request, slug))


@page_route(router, "/n/{slug}/archive", response_class=HTMLResponse)
async def newsletter_archive(slug: Slug, request: Request) -> Response:
    """List a newsletter's published issues, newest first."""
    return await answer(request, lambda: render_archive(request, slug))


@page_route(router, "/n/{slug}/feed.xml")
async def newsletter_feed(slug: Slug, request: Request) -> Response:
    """Return an Atom feed of a newsletter's published issues."""
    return await answer(request, lambda: render_feed(request.app.state.ctx, slug))


@page_route(router, "/n/{slug}/archive/{issue}", response_class=HTMLResponse)
async def newsletter_issue(slug: Slug, issue: str, request: Request) -> Response:
    """Return the web version of one published issue of this newsletter (404 for another's)."""
    return await answer(request, lambda: render_issue(request, slug, issue))


@page_route(router, "/n/{slug}/subscribe/qr.png")
async def newsletter_qr(slug: Slug, request: Request) -> Response:
    """Return the QR code of a newsletter's sign-up page."""
    return await answer(request, lambda: render_qr(request, slug))
