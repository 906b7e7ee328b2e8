"""Wire the console into the app: its routers, its static files and its security headers."""

from __future__ import annotations

from fastapi import FastAPI

from app.console import (
    routes_ab,
    routes_auth,
    routes_bulk,
    routes_dashboard,
    routes_drafts,
    routes_feeds,
    routes_issue_blocks,
    routes_issue_duplicate,
    routes_issue_editor,
    routes_issue_list,
    routes_issue_page,
    routes_issue_preview,
    routes_media,
    routes_newsletters,
    routes_people,
    routes_reader,
    routes_relays,
    routes_segments,
    routes_sending,
    routes_sequences,
)
from app.console.web import PREFIX, ConsoleHeaders, console_static


def install_console(app: FastAPI) -> None:
    """Add the /editor/ pages to `app`."""
    # Static files first: the sign-in page needs its stylesheet before anyone is signed in.
    app.mount(f"{PREFIX}/static", console_static(), name="console-static")
    app.include_router(routes_auth.router)
    app.include_router(routes_dashboard.router)
    app.include_router(routes_drafts.router)
    app.include_router(routes_issue_list.router)
    # /issues/new and /issues/preview-markdown before the page's /issues/{issue_id}
    app.include_router(routes_issue_editor.router)
    app.include_router(routes_issue_preview.router)
    app.include_router(routes_issue_page.router)  # /issues/{issue_id}
    app.include_router(routes_issue_duplicate.router)
    app.include_router(routes_issue_blocks.router)
    app.include_router(routes_sending.router)
    app.include_router(routes_bulk.router)
    app.include_router(routes_ab.router)
    app.include_router(routes_reader.router)  # /subscribers/{id}/tags before the reader page
    app.include_router(routes_people.router)
    app.include_router(routes_newsletters.router)
    app.include_router(routes_segments.router)
    app.include_router(routes_feeds.router)
    app.include_router(routes_sequences.router)
    app.include_router(routes_media.router)
    app.include_router(routes_relays.router)
    app.add_middleware(ConsoleHeaders)
