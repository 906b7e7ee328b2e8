"""Console page for RSS/Atom feeds: add one, see each poll's outcome, poll soon, remove."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy import update

from app.audience.newsletters import list_newsletters
from app.automations import feeds
from app.console.web import PREFIX, ConsoleRoute, EditorDep, SessionDep, redirect, render, signed_in
from app.errors import DomainError
from app.models import Feed, utcnow

router = APIRouter(
    prefix=PREFIX,
    route_class=ConsoleRoute,
    dependencies=[Depends(signed_in)],
    include_in_schema=False,
)

NOTICES = {
    "added": "The feed is added. Its first poll records what it holds; later ones make issues.",
    "polling": "The feed will be polled within a few seconds; reload to see the result.",
    "removed": "The feed is removed. Issues made from it stay.",
}


def _page(
    request: Request, session: SessionDep, status_code: int = 200, **extra: object
) -> Response:
    rows = [(f, feeds.items_seen(session, f.id)) for f in feeds.list_feeds(session)]
    context: dict[str, object] = {
        "rows": rows,
        "notice": NOTICES.get(request.query_params.get("done", "")),
        "error": None,
        "form": {},
        "newsletters": list_newsletters(session),
    }
    context.update(extra)
    return render(request, "feeds.html", status_code=status_code, section="feeds", **context)


@router.get("/feeds")
def feed_list(request: Request, session: SessionDep, _: EditorDep) -> Response:
    """List the feeds with their last poll, entries seen and alerts."""
    return _page(request, session)


@router.post("/feeds")
def feed_add(
    request: Request,
    session: SessionDep,
    _: EditorDep,
    url: Annotated[str, Form(max_length=2000)] = "",
    every: Annotated[str, Form(max_length=40)] = "PT1H",
    mode: Annotated[str, Form(max_length=8)] = "draft",
    max_items: Annotated[int, Form(ge=1, le=50)] = 10,
    newsletter: Annotated[str, Form(max_length=80)] = "",
) -> Response:
    """Add a feed (to a newsletter: its issues are that newsletter's)."""
    try:
        feeds.create_feed(session, url, every, mode, max_items, newsletter or None)
    except DomainError as exc:
        session.rollback()
        form = {
            "url": url,
            "every": every,
            "mode": mode,
            "max_items": max_items,
            "newsletter": newsletter,
        }
        return _page(request, session, exc.status, error=exc.message, form=form)
    return redirect(f"{PREFIX}/feeds?done=added")


@router.post("/feeds/{feed_id}/poll")
def feed_poll_soon(feed_id: int, session: SessionDep, _: EditorDep) -> Response:
    """Make a feed due now; the worker polls it within seconds (the page never waits on it)."""
    feeds.get_feed(session, feed_id)
    session.execute(update(Feed).where(Feed.id == feed_id).values(next_poll_at=utcnow()))
    return redirect(f"{PREFIX}/feeds?done=polling")


@router.post("/feeds/{feed_id}/remove")
def feed_remove(feed_id: int, session: SessionDep, _: EditorDep) -> Response:
    """Remove a feed."""
    feeds.delete_feed(session, feed_id)
    return redirect(f"{PREFIX}/feeds?done=removed")
