"""Leaving: the unsubscribe page, the unsubscribe itself (RFC 8058 one-click too), and undo."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.audience import newsletters
from app.context import Context
from app.deps import ContextDep, SessionDep
from app.errors import BadToken
from app.models import utcnow
from app.subscribers import service
from app.subscribers.service import Unsubscribed
from app.tokens import ListToken
from app.web.pages import identity, render_page
from app.web.site import page_identity, reader_identity

router = APIRouter(tags=["public"])

# Plain `def` handlers, as in app.web.signup: a database call never blocks the event loop.

# An issue's unsubscribe link names its newsletter outside the signed token (a constant per
# issue, so the message stays render-once): it leaves that newsletter only. A link without it
# (every email sent before newsletters), or naming one that no longer exists, leaves everything.
NewsletterQuery = Annotated[str | None, Query(max_length=80)]


def _one_newsletter(session: SessionDep, ctx: Context, slug: str | None) -> dict[str, Any]:
    """Return the identity of the newsletter an unsubscribe link names, with its id; or {}."""
    head = newsletters.masthead_of(session, ctx.settings, slug) if slug else None
    if head is None:
        return {}
    # leave_slug: the unsubscribe form posts back to leaving this newsletter only.
    return {**identity(head), "newsletter_id": head.id, "leave_slug": head.slug}


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(
    token: str,
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    newsletter: NewsletterQuery = None,
) -> Response:
    """Show one Unsubscribe button, the masked address and "pause instead"; changes nothing."""
    ref = ctx.tokens.open_unsubscribe_token(token)
    masked = service.masked_address(session, ref)
    one = _one_newsletter(session, ctx, newsletter)
    one.pop("newsletter_id", None)
    return render_page(
        request,
        "unsubscribe.html",
        **(one or page_identity(session, ctx)),
        token=token,
        masked_email=masked,
        # "Pause instead" needs a current link (one that carries the reader's nonce).
        preferences_token=(
            ctx.tokens.preferences_token(ref.subscriber_id, ref.nonce)
            if masked and ref.nonce
            else None
        ),
    )


def unsubscribed_page(
    request: Request, ctx: Context, ref: ListToken, done: Unsubscribed, **site: Any
) -> Response:
    # "Subscribe me again" only for the unsubscribe this very request made, by a current link.
    undo = None
    if done.current and done.at is not None and ref.nonce is not None:
        undo = ctx.tokens.undo_token(ref.subscriber_id, ref.nonce, done.at)
    return render_page(
        request,
        "unsubscribed.html",
        **site,
        token=ctx.tokens.unsubscribe_token(ref.subscriber_id, ref.nonce) if ref.nonce else "",
        undo_token=undo,
    )


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe(
    token: str,
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    newsletter: NewsletterQuery = None,
) -> Response:
    """Unsubscribe (also the RFC 8058 one-click target): no cookie, no redirect, idempotent."""
    # The body (List-Unsubscribe=One-Click, urlencoded or multipart) is deliberately not read:
    # the signed token is the whole authority, and mail providers differ in how they encode it.
    ref = ctx.tokens.open_unsubscribe_token(token)
    one = _one_newsletter(session, ctx, newsletter)
    if one:
        done = service.leave_newsletter(session, ref, one.pop("newsletter_id"), utcnow())
        return unsubscribed_page(request, ctx, ref, done, **one)
    done = service.unsubscribe(session, ref, utcnow())
    return unsubscribed_page(request, ctx, ref, done, **page_identity(session, ctx))


@router.post("/unsubscribe/{token}/undo", response_class=HTMLResponse)
def undo_unsubscribe(
    token: str,
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    undo: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Subscribe again after leaving by mistake: within a day, by the button on that page."""
    ref = ctx.tokens.open_unsubscribe_token(token)
    if not undo:
        raise BadToken(service.NO_UNDO)
    row = service.resubscribe(session, ref, ctx.tokens.read_undo_token(undo), utcnow())
    return render_page(
        request,
        "resubscribed.html",
        # The newsletter the reader is back on, not the site's default one.
        **reader_identity(session, ctx, row.id, ("active",)),
        preferences_token=ctx.tokens.preferences_token(row.id, row.token_nonce),
    )
