"""Editor API for RSS/Atom feeds: register, list, read, poll now, delete."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, Depends, Request, Response

from app.audience.newsletters import get_newsletter
from app.automations import feeds
from app.automations.schemas import FeedIn, FeedOut, PollOut
from app.context import Context
from app.db import session_scope
from app.deps import ContextDep, IdPath, SessionDep, require_editor
from app.editors import authenticate_editor
from app.errors import Unauthorized

router = APIRouter(prefix="/feeds", tags=["feeds"], dependencies=[Depends(require_editor)])
# Polling waits on the network: its editor check must not hold a transaction (on SQLite, the
# write lock) while it does, so it lives on a router of its own with a brief check.
poll_router = APIRouter(prefix="/feeds", tags=["feeds"])


def _editor_briefly(request: Request, ctx: ContextDep) -> None:
    """Check the bearer token in a transaction of its own, closed before the handler runs."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("An editor token is required: Authorization: Bearer <token>.")
    with session_scope(ctx.sessions) as session:
        authenticate_editor(session, token.strip())


def _out(session: SessionDep, feed_id: int) -> FeedOut:
    feed = feeds.get_feed(session, feed_id)
    out = FeedOut.model_validate(feed)
    out.items_seen = feeds.items_seen(session, feed_id)
    out.newsletter = get_newsletter(session, feed.newsletter_id).slug
    return out


@router.post("", response_model=FeedOut, status_code=201)
def create_feed(body: FeedIn, session: SessionDep) -> FeedOut:
    """Register a feed; the first poll records what exists and mails nothing."""
    feed = feeds.create_feed(
        session, body.url, body.every, body.mode, body.max_items, body.newsletter
    )
    return _out(session, feed.id)


@router.get("", response_model=list[FeedOut])
def list_feeds(session: SessionDep) -> list[FeedOut]:
    """Return every feed with its last poll and alert."""
    return [_out(session, f.id) for f in feeds.list_feeds(session)]


@router.get("/{feed_id}", response_model=FeedOut)
def get_feed(feed_id: IdPath, session: SessionDep) -> FeedOut:
    """Return one feed: last poll, last error, entries seen."""
    return _out(session, feed_id)


@poll_router.post(
    "/{feed_id}/poll", response_model=PollOut, dependencies=[Depends(_editor_briefly)]
)
async def poll_now(feed_id: IdPath, ctx: ContextDep) -> PollOut:
    """Poll a feed now, whatever its schedule; answer with the issue made, if any."""
    await to_thread.run_sync(_exists, ctx, feed_id)
    issue_id = await feeds.poll_feed(ctx, feed_id, force=True)
    return PollOut(issue_id=issue_id, feed=await to_thread.run_sync(_read, ctx, feed_id))


def _exists(ctx: Context, feed_id: int) -> None:
    with session_scope(ctx.sessions) as session:
        feeds.get_feed(session, feed_id)


def _read(ctx: Context, feed_id: int) -> FeedOut:
    with session_scope(ctx.sessions) as session:
        return _out(session, feed_id)


@router.delete("/{feed_id}", status_code=204)
def delete_feed(feed_id: IdPath, session: SessionDep) -> Response:
    """Stop polling a feed (issues it made stay)."""
    feeds.delete_feed(session, feed_id)
    return Response(status_code=204)
