"""Sign-up: the form (site-wide and per newsletter), its QR code, the posted sign-up, confirm."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.orm import Session

from app.audience import newsletters
from app.context import Context
from app.db import session_scope
from app.deps import ContextDep, SessionDep
from app.errors import InvalidInput, NotFound
from app.models import SubscriptionStatus, utcnow
from app.ratelimit import RateLimited, check_signup
from app.rendering.masthead import Masthead
from app.subscribers import service
from app.subscribers.schemas import SubscribeIn
from app.web.methods import page_route
from app.web.pages import identity, page_html, render_page
from app.web.proxies import client_ip
from app.web.reading import HTML_TYPE, answer
from app.web.site import page_identity, reader_identity

router = APIRouter(tags=["public"])

HONEYPOT = "website"
PENDING = (SubscriptionStatus.pending.value,)


def _interval(ctx: Context) -> timedelta:
    return timedelta(seconds=ctx.settings.confirmation_interval_seconds)


def _is_json(request: Request) -> bool:
    return "application/json" in request.headers.get("content-type", "")


# Sign-up ---------------------------------------------------------------------------------------


# The sign-up form and its QR code are where a shared link's readers go next: like the archive
# pages (app.web.reading), they are answered from the page cache, one render per change.


@page_route(router, "/subscribe", response_class=HTMLResponse)
async def subscribe_form(request: Request) -> Response:
    """Show the sign-up form with the QR code."""
    return await answer(request, lambda: render_signup(request, None))


@page_route(router, "/n/{slug}/subscribe", response_class=HTMLResponse)
async def newsletter_subscribe_form(
    slug: Annotated[str, Path(max_length=80)], request: Request
) -> Response:
    """Show the sign-up form of one newsletter: a sign-up from here takes that newsletter."""
    return await answer(request, lambda: render_signup(request, slug))


@page_route(router, "/subscribe/qr.png")
async def subscribe_qr(request: Request) -> Response:
    """Return the QR code of the sign-up page."""
    return await answer(request, lambda: render_qr(request, None))


def render_signup(request: Request, slug: str | None) -> tuple[bytes, str]:
    """Render a sign-up form (None: the site-wide one, which takes the default newsletter)."""
    head = _head(request.app.state.ctx, slug)
    # Only a newsletter's own form names it: a sign-up from /subscribe takes the default.
    named = {"newsletter_slugs": [head.slug]} if slug is not None else {}
    html = page_html(
        request, "subscribe.html", **identity(head), **named, email="", reader_name="", error=None
    )
    return html, HTML_TYPE


def render_qr(request: Request, slug: str | None) -> tuple[bytes, str]:
    """Render the QR code of a sign-up page (None: the site-wide one)."""
    ctx: Context = request.app.state.ctx
    if slug is None:
        return ctx.renderer.qr_png(), "image/png"
    head = _head(ctx, slug)
    return ctx.renderer.qr_png(f"{ctx.settings.base_url}{head.subscribe_path}"), "image/png"


def _head(ctx: Context, slug: str | None) -> Masthead:
    """Return the masthead of the newsletter with this slug (None: the default); else 404."""
    with session_scope(ctx.reads) as session:
        head = newsletters.masthead_of(session, ctx.settings, slug)
    if head is None:
        raise NotFound("There is no such newsletter.")
    return head


@dataclass(frozen=True)
class SignupForm:
    """A sign-up as posted, before any checks: JSON (api) or an HTML form."""

    email: str
    name: str
    honeypot: str
    is_json: bool
    timezone: str = ""  # from the browser; an unknown name falls back to the default
    newsletters: tuple[str, ...] = ()  # slugs; none: the default newsletter


async def read_signup(request: Request) -> SignupForm:
    """Read the body here, on the event loop, so the handler itself can be synchronous."""
    if _is_json(request):
        try:
            data = SubscribeIn.model_validate(json.loads(await request.body()))
        except (ValueError, TypeError):
            raise InvalidInput(
                'Send JSON like {"email": "you@example.org", "name": "Ada"}.'
            ) from None
        # The form's honeypot under the same name: a bot filling every field fills it too.
        return SignupForm(
            data.email,
            data.name or "",
            data.website or "",
            True,
            data.timezone or "",
            tuple(str(n)[:80] for n in data.newsletters or ()),
        )
    form = await request.form()
    return SignupForm(
        str(form.get("email") or ""),
        str(form.get("name") or ""),
        str(form.get(HONEYPOT) or ""),
        False,
        str(form.get("timezone") or ""),
        tuple(str(n)[:80] for n in form.getlist("newsletters")[:50]),
    )


# Every handler below is a plain `def`: FastAPI runs it in the threadpool, so a database call
# that waits on a lock never blocks the event loop (an `async def` doing sync I/O froze the
# whole server when two sign-ups for one address raced).


@router.post("/subscribe")
def subscribe(
    request: Request,
    body: Annotated[SignupForm, Depends(read_signup)],
    ctx: ContextDep,
    session: SessionDep,
) -> Response:
    """Sign up by form or JSON; the answer never reveals whether the address was known."""
    return _subscribe(request, body, ctx, session)


@router.post("/n/{slug}/subscribe")
def newsletter_subscribe(
    slug: Annotated[str, Path(max_length=80)],
    request: Request,
    body: Annotated[SignupForm, Depends(read_signup)],
    ctx: ContextDep,
    session: SessionDep,
) -> Response:
    """Sign up from a newsletter's own pages: that newsletter, unless the form names others."""
    return _subscribe(request, body, ctx, session, page_of=slug)


def _subscribe(
    request: Request,
    body: SignupForm,
    ctx: Context,
    session: Session,
    page_of: str | None = None,
) -> Response:
    # The limit first: it commits on a connection of its own, which on SQLite must not wait
    # for this request's session to let go of the write lock.
    _rate_limit(ctx, request, body.email)
    if page_of is not None:
        if newsletters.find(session, page_of) is None:
            raise NotFound("There is no such newsletter.")
        if not body.newsletters:
            body = replace(body, newsletters=(page_of,))
    if body.is_json and body.honeypot.strip():
        # A bot filled the honeypot: answer exactly as for a person and store nothing.
        return JSONResponse({"status": "pending"}, status_code=202)
    if body.is_json:
        _record_signup(request, body, ctx, session, "api")
        return JSONResponse({"status": "pending"}, status_code=202)
    # The pages answering a form speak for the newsletter whose page it came from.
    site = page_identity(session, ctx, body.newsletters[0] if body.newsletters else None)
    if body.honeypot.strip():
        # A bot filled the hidden field: answer exactly as for a person and store nothing.
        return render_page(request, "check_inbox.html", **site, email=body.email.strip()[:320])
    try:
        _record_signup(request, body, ctx, session, "form")
    except InvalidInput as exc:
        return render_page(
            request,
            "subscribe.html",
            status=422,
            **site,
            email=body.email,
            reader_name=body.name,
            error=exc.message,
            newsletter_slugs=[n for n in body.newsletters if newsletters.SLUG.fullmatch(n)],
        )
    return render_page(request, "check_inbox.html", **site, email=body.email.strip())


def _record_signup(
    request: Request, body: SignupForm, ctx: Context, session: Session, source: str
) -> None:
    """Record the sign-up: a pending reader, one confirmation for every newsletter asked."""
    service.subscribe(
        session,
        email=body.email,
        name=body.name,
        source=source,
        ip=client_ip(request, ctx.settings),
        now=utcnow(),
        confirmation_interval=_interval(ctx),
        timezone=service.timezone_or_default(body.timezone, ctx.settings.default_timezone),
        newsletters=newsletters.ids_of(session, list(body.newsletters)),
    )


def _rate_limit(ctx: Context, request: Request, email: str) -> None:
    """Refuse with 429 and Retry-After past the per-IP or per-address sign-up limits."""
    decision = check_signup(ctx.sessions, client_ip(request, ctx.settings), email, utcnow())
    if not decision.allowed:
        raise RateLimited(decision.retry_after)


# Confirm ---------------------------------------------------------------------------------------


@router.get("/confirm/{token}", response_class=HTMLResponse)
def confirm_page(token: str, request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Show a Confirm button; link scanners follow GETs, so this changes nothing."""
    subscriber_id, _tag = ctx.tokens.read_confirm_token(token)  # 400 before any button
    return render_page(
        request,
        "confirm.html",
        **reader_identity(session, ctx, subscriber_id, PENDING),
        token=token,
    )


@router.post("/confirm/{token}", response_class=HTMLResponse)
def confirm(token: str, request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Activate the subscription."""
    subscriber_id, _tag = ctx.tokens.read_confirm_token(token)
    site = reader_identity(session, ctx, subscriber_id, PENDING)  # before they turn active
    row = service.confirm(session, ctx.tokens, token, utcnow(), welcome=ctx.settings.welcome_email)
    return render_page(
        request,
        "confirmed.html",
        **site,
        reader_name=row.name,
        preferences_token=ctx.tokens.preferences_token(row.id, row.token_nonce),
    )
