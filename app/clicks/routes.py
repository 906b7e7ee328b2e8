"""GET /l/<token>: count a click on an issue's link and redirect to where it points."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from app.clicks.service import follow
from app.deps import ContextDep, WriteSessionDep
from app.models import utcnow
from app.web.proxies import client_ip

clicks_router = APIRouter(tags=["clicks"])


# HEAD (link checkers) is answered but left out of the schema: one operation per path there.
# A GET that writes (the click is counted): a write session, so SQLite takes its lock up front.
@clicks_router.head("/l/{token}", include_in_schema=False)
@clicks_router.get("/l/{token}")
def click(
    token: str, request: Request, session: WriteSessionDep, ctx: ContextDep
) -> RedirectResponse:
    """Redirect (302) to the link's URL; a tampered token is a 400. HEAD is not counted."""
    record = request.method == "GET"
    client = client_ip(request, ctx.settings)
    url = follow(session, ctx.settings, token, utcnow(), record=record, client=client)
    return _redirect(url)


@clicks_router.head("/l/{token}/{reader}", include_in_schema=False)
@clicks_router.get("/l/{token}/{reader}")
def click_by_reader(
    token: str, reader: str, request: Request, session: WriteSessionDep, ctx: ContextDep
) -> RedirectResponse:
    """The same, from a link carrying its reader (MORNINGPOST_TRACK_READERS=true)."""
    subscriber_id = ctx.tokens.read_preferences_token(reader)  # 400 when tampered
    record = request.method == "GET"
    client = client_ip(request, ctx.settings)
    url = follow(
        session, ctx.settings, token, utcnow(), record=record, reader=subscriber_id, client=client
    )
    return _redirect(url)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(
        url,
        status_code=302,
        # The reader's next page learns nothing of us, and no cache replays a click.
        headers={"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"},
    )
