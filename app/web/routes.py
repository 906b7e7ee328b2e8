"""Public pages: sign-up, confirm, unsubscribe (incl. RFC 8058 one-click), preferences."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.orm import Session

from app.audience import newsletters
from app.config import Settings, time_zone_names
from app.context import Context
from app.deps import ContextDep, SessionDep
from app.errors import BadToken, InvalidInput, NotFound
from app.models import Subscriber, SubscriberStatus, SubscriptionStatus, utcnow
from app.ratelimit import RateLimited, check_signup
from app.rendering.masthead import Masthead, from_settings
from app.subscribers import service
from app.subscribers.schemas import SubscribeIn
from app.subscribers.service import Unsubscribed
from app.tokens import ListToken
from app.web.cache import Recent
from app.web.pages import identity, render_page
from app.web.proxies import client_ip
from app.web.stamp import DatabaseDown

# Test copies and previews carry tokens of subscriber 0, who never exists (see the worker).
TEST_COPY_READER = 0

router = APIRouter(tags=["public"])
# Probes and fixed files: included first (app.main), as routes are matched in order and these
# are asked the most, by monitors and crawlers, and under a spike.
probes = APIRouter(tags=["public"])

HONEYPOT = "website"
PENDING = (SubscriptionStatus.pending.value,)
PAUSE_CHOICES = (0, 1, 2, 4, 8)


def _interval(ctx: Context) -> timedelta:
    return timedelta(seconds=ctx.settings.confirmation_interval_seconds)


def _is_json(request: Request) -> bool:
    return "application/json" in request.headers.get("content-type", "")


# Sign-up ---------------------------------------------------------------------------------------


@router.get("/subscribe", response_class=HTMLResponse)
def subscribe_form(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Show the sign-up form with the QR code."""
    return render_page(
        request, "subscribe.html", **_site(session, ctx), email="", reader_name="", error=None
    )


@router.get("/n/{slug}/subscribe", response_class=HTMLResponse)
def newsletter_subscribe_form(
    slug: Annotated[str, Path(max_length=80)],
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
) -> Response:
    """Show the sign-up form of one newsletter: a sign-up from here takes that newsletter."""
    head = newsletters.masthead_of(session, ctx.settings, slug)
    if head is None:
        raise NotFound("There is no such newsletter.")
    return render_page(
        request,
        "subscribe.html",
        **identity(head),
        newsletter_slugs=[head.slug],
        email="",
        reader_name="",
        error=None,
    )


@router.get("/subscribe/qr.png")
def subscribe_qr(ctx: ContextDep) -> Response:
    """Return the QR code of the sign-up page."""
    return Response(
        ctx.renderer.qr_png(),
        media_type="image/png",
        headers={"Cache-Control": "public, max-age=86400"},
    )


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


async def read_form(request: Request) -> dict[str, str]:
    """Return a posted form's text fields (files are ignored)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def read_newsletter_boxes(request: Request) -> list[str]:
    """Return the ticked `newsletters` boxes of a posted form (a repeated field)."""
    form = await request.form()
    return [v[:80] for v in form.getlist("newsletters")[:50] if isinstance(v, str)]


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
        wanted = newsletters.ids_of(session, list(body.newsletters))
        service.subscribe(
            session,
            email=body.email,
            name=body.name,
            source="api",
            ip=client_ip(request, ctx.settings),
            now=utcnow(),
            confirmation_interval=_interval(ctx),
            timezone=service.timezone_or_default(body.timezone, ctx.settings.default_timezone),
            newsletters=wanted,
        )
        return JSONResponse({"status": "pending"}, status_code=202)
    # The pages answering a form speak for the newsletter whose page it came from.
    site = _site(session, ctx, body.newsletters[0] if body.newsletters else None)
    if body.honeypot.strip():
        # A bot filled the hidden field: answer exactly as for a person and store nothing.
        return render_page(request, "check_inbox.html", **site, email=body.email.strip()[:320])
    try:
        wanted = newsletters.ids_of(session, list(body.newsletters))
        service.subscribe(
            session,
            email=body.email,
            name=body.name,
            source="form",
            ip=client_ip(request, ctx.settings),
            now=utcnow(),
            confirmation_interval=_interval(ctx),
            timezone=service.timezone_or_default(body.timezone, ctx.settings.default_timezone),
            newsletters=wanted,
        )
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
        request, "confirm.html", **_reader_site(session, ctx, subscriber_id, PENDING), token=token
    )


@router.post("/confirm/{token}", response_class=HTMLResponse)
def confirm(token: str, request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Activate the subscription."""
    subscriber_id, _tag = ctx.tokens.read_confirm_token(token)
    site = _reader_site(session, ctx, subscriber_id, PENDING)  # before they turn active
    row = service.confirm(session, ctx.tokens, token, utcnow(), welcome=ctx.settings.welcome_email)
    return render_page(
        request,
        "confirmed.html",
        **site,
        reader_name=row.name,
        preferences_token=ctx.tokens.preferences_token(row.id, row.token_nonce),
    )


# Unsubscribe -----------------------------------------------------------------------------------


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


def _site(session: Session, ctx: Context, slug: str | None = None) -> dict[str, Any]:
    """Return the identity a page shows: the named newsletter's, else the default one's."""
    head = newsletters.masthead_of(session, ctx.settings, slug) if slug else None
    return identity(head or _default(session, ctx))


def _default(session: Session, ctx: Context) -> Masthead:
    head = newsletters.masthead_of(session, ctx.settings)
    return head if head is not None else from_settings(ctx.settings)


def _reader_site(
    session: Session, ctx: Context, subscriber_id: int, standings: tuple[str, ...]
) -> dict[str, Any]:
    """Return the identity of a reader's first newsletter in these standings."""
    heads = newsletters.reader_mastheads(session, ctx.settings, subscriber_id, standings)
    return identity(heads[0])


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
        **(one or _site(session, ctx)),
        token=token,
        masked_email=masked,
        # "Pause instead" needs a current link (one that carries the reader's nonce).
        preferences_token=(
            ctx.tokens.preferences_token(ref.subscriber_id, ref.nonce)
            if masked and ref.nonce
            else None
        ),
    )


def _unsubscribed(
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
        return _unsubscribed(request, ctx, ref, done, **one)
    done = service.unsubscribe(session, ref, utcnow())
    return _unsubscribed(request, ctx, ref, done, **_site(session, ctx))


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
        **_site(session, ctx),
        preferences_token=ctx.tokens.preferences_token(row.id, row.token_nonce),
    )


# Preferences -----------------------------------------------------------------------------------


def _preferences(
    request: Request,
    token: str,
    row: Subscriber,
    session: Session,
    settings: Settings,
    *,
    status: int = 200,
    **extra: Any,
) -> Response:
    paused = row.paused_until if row.paused_until and row.paused_until > utcnow() else None
    taking = newsletters.subscriptions_of(session, row.id)
    newsletter_boxes = [
        (head.slug, head.name, taking.get(head.slug) == "active")
        for head in (
            newsletters.masthead(n, settings) for n in newsletters.list_newsletters(session)
        )
    ]
    return render_page(
        request,
        "preferences.html",
        **identity(newsletters.masthead_of(session, settings) or from_settings(settings)),
        status=status,
        token=token,
        reader_name=row.name,
        email=row.email,
        active=row.status == SubscriberStatus.active,
        paused_until=paused,
        pause_choices=PAUSE_CHOICES,
        timezone=row.timezone,
        timezones=sorted(time_zone_names()),
        newsletters=newsletter_boxes,
        **extra,
    )


@router.get("/preferences/{token}", response_class=HTMLResponse)
def preferences_page(
    token: str, request: Request, ctx: ContextDep, session: SessionDep
) -> Response:
    """Show the preferences form (name, pause, leave)."""
    ref = ctx.tokens.open_preferences_token(token)
    if ref.subscriber_id == TEST_COPY_READER:
        return render_page(request, "test_copy.html", **_site(session, ctx), what="preferences")
    row = service.get_subscriber_for_page(session, ref)
    return _preferences(request, token, row, session, ctx.settings)


@router.post("/preferences/{token}", response_class=HTMLResponse)
def save_preferences(
    token: str,
    request: Request,
    form: Annotated[dict[str, str], Depends(read_form)],
    chosen_slugs: Annotated[list[str], Depends(read_newsletter_boxes)],
    ctx: ContextDep,
    session: SessionDep,
) -> Response:
    """Save the name, pause, time zone and newsletters, or leave everything."""
    ref = ctx.tokens.open_preferences_token(token)
    if ref.subscriber_id == TEST_COPY_READER:
        return render_page(request, "test_copy.html", **_site(session, ctx), what="preferences")
    now = utcnow()
    row = service.get_subscriber_for_page(session, ref)
    if form.get("action") == "leave":
        done = service.unsubscribe(session, ref, now)
        return _unsubscribed(request, ctx, ref, done, **_site(session, ctx))
    raw_weeks = str(form.get("pause_weeks") or "0")
    try:
        weeks = int(raw_weeks)
        row = service.update_preferences(
            session,
            row.id,
            name=str(form.get("name") or ""),
            pause_weeks=weeks,
            now=now,
            timezone=str(form.get("timezone") or ""),
        )
    except ValueError:
        return _preferences(
            request,
            token,
            row,
            session,
            ctx.settings,
            status=422,
            error="Choose a pause from the list.",
        )
    except InvalidInput as exc:
        # update_preferences checks everything before it changes anything.
        return _preferences(
            request, token, row, session, ctx.settings, status=422, error=exc.message
        )
    if form.get("newsletters_shown"):  # a page from before newsletters leaves them alone
        chosen = newsletters.ids_of(session, list(chosen_slugs)) if chosen_slugs else []
        newsletters.choose(session, row.id, set(chosen), now)
    return _preferences(request, token, row, session, ctx.settings, saved=True)


# Probes and fixed files (the archive lives in app/web/reading.py) --------------------------------


@probes.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    """Answer browsers' automatic icon request without a 404 in their console."""
    return Response(status_code=204, headers={"Cache-Control": "public, max-age=604800"})


# Token pages (confirm, unsubscribe, preferences) and the console are nobody's search result.
ROBOTS_TXT = (
    "User-agent: *\n"
    "Disallow: /confirm/\n"
    "Disallow: /unsubscribe/\n"
    "Disallow: /preferences/\n"
    "Disallow: /editor/\n"
)


@probes.get("/robots.txt", include_in_schema=False)
async def robots() -> Response:
    """Tell crawlers to leave token pages alone (also the benchmark's fixed-page ceiling)."""
    return Response(
        ROBOTS_TXT, media_type="text/plain", headers={"Cache-Control": "public, max-age=86400"}
    )


@probes.get("/healthz")
async def healthz(request: Request) -> Response:
    """Answer 200 when the database answered a SELECT 1 within the last second, else 503."""
    # A success is trusted for a second and shared by every probe in it, so a spike never
    # queues the probe behind pages for a thread or a connection; a failure is never kept.
    health: Recent[None] = request.app.state.health
    try:
        await health.get()
    except DatabaseDown:
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})
