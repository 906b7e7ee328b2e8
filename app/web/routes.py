"""Public pages: sign-up, confirm, unsubscribe (incl. RFC 8058 one-click), preferences, archive."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.context import Context
from app.deps import ContextDep, SessionDep
from app.errors import BadToken, InvalidInput
from app.issues import archive
from app.models import Subscriber, SubscriberStatus, utcnow
from app.ratelimit import RateLimited, check_signup
from app.subscribers import service
from app.subscribers.schemas import SubscribeIn
from app.subscribers.service import Unsubscribed
from app.tokens import ListToken
from app.web.pages import render_page
from app.web.proxies import client_ip

router = APIRouter(tags=["public"])

HONEYPOT = "website"
PAUSE_CHOICES = (0, 1, 2, 4, 8)


def _interval(ctx: Context) -> timedelta:
    return timedelta(seconds=ctx.settings.confirmation_interval_seconds)


def _is_json(request: Request) -> bool:
    return "application/json" in request.headers.get("content-type", "")


# Sign-up ---------------------------------------------------------------------------------------


@router.get("/subscribe", response_class=HTMLResponse)
def subscribe_form(request: Request) -> Response:
    """Show the sign-up form with the QR code."""
    return render_page(request, "subscribe.html", email="", reader_name="", error=None)


@router.get("/subscribe/qr.png")
def subscribe_qr(ctx: ContextDep) -> Response:
    """Return the QR code of the sign-up page."""
    return Response(
        ctx.renderer.qr_png(),
        media_type="image/png",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.post("/subscribe")
async def subscribe(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Sign up by form or JSON; the answer never reveals whether the address was known."""
    if _is_json(request):
        body = await _json_signup(request)
        _rate_limit(ctx, request, body.email)
        if (body.website or "").strip():
            # A bot filled the honeypot: answer exactly as for a person and store nothing.
            return JSONResponse({"status": "pending"}, status_code=202)
        service.subscribe(
            session,
            email=body.email,
            name=body.name,
            source="api",
            ip=client_ip(request, ctx.settings),
            now=utcnow(),
            confirmation_interval=_interval(ctx),
        )
        return JSONResponse({"status": "pending"}, status_code=202)

    form = await request.form()
    email = str(form.get("email") or "")
    name = str(form.get("name") or "")
    _rate_limit(ctx, request, email)
    if str(form.get(HONEYPOT) or "").strip():
        # A bot filled the hidden field: answer exactly as for a person and store nothing.
        return render_page(request, "check_inbox.html", email=email.strip()[:320])
    try:
        service.subscribe(
            session,
            email=email,
            name=name,
            source="form",
            ip=client_ip(request, ctx.settings),
            now=utcnow(),
            confirmation_interval=_interval(ctx),
        )
    except InvalidInput as exc:
        return render_page(
            request, "subscribe.html", status=422, email=email, reader_name=name, error=exc.message
        )
    return render_page(request, "check_inbox.html", email=email.strip())


async def _json_signup(request: Request) -> SubscribeIn:
    try:
        return SubscribeIn.model_validate(json.loads(await request.body()))
    except (ValueError, TypeError):
        raise InvalidInput('Send JSON like {"email": "you@example.org", "name": "Ada"}.') from None


def _rate_limit(ctx: Context, request: Request, email: str) -> None:
    """Refuse with 429 and Retry-After past the per-IP or per-address sign-up limits."""
    decision = check_signup(ctx.sessions, client_ip(request, ctx.settings), email, utcnow())
    if not decision.allowed:
        raise RateLimited(decision.retry_after)


# Confirm ---------------------------------------------------------------------------------------


@router.get("/confirm/{token}", response_class=HTMLResponse)
def confirm_page(token: str, request: Request, ctx: ContextDep) -> Response:
    """Show a Confirm button; link scanners follow GETs, so this changes nothing."""
    ctx.tokens.read_confirm_token(token)  # 400 for a bad link, before any button
    return render_page(request, "confirm.html", token=token)


@router.post("/confirm/{token}", response_class=HTMLResponse)
def confirm(token: str, request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Activate the subscription."""
    row = service.confirm(session, ctx.tokens, token, utcnow())
    return render_page(
        request,
        "confirmed.html",
        reader_name=row.name,
        preferences_token=ctx.tokens.preferences_token(row.id, row.token_nonce),
    )


# Unsubscribe -----------------------------------------------------------------------------------


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(token: str, request: Request, ctx: ContextDep) -> Response:
    """Show one Unsubscribe button; changes nothing."""
    ctx.tokens.open_unsubscribe_token(token)
    return render_page(request, "unsubscribe.html", token=token)


def _unsubscribed(request: Request, ctx: Context, ref: ListToken, done: Unsubscribed) -> Response:
    # "Subscribe me again" only for the unsubscribe this very request made, by a current link.
    undo = None
    if done.current and done.at is not None and ref.nonce is not None:
        undo = ctx.tokens.undo_token(ref.subscriber_id, ref.nonce, done.at)
    return render_page(
        request,
        "unsubscribed.html",
        token=ctx.tokens.unsubscribe_token(ref.subscriber_id, ref.nonce) if ref.nonce else "",
        undo_token=undo,
    )


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe(token: str, request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Unsubscribe (also the RFC 8058 one-click target): no cookie, no redirect, idempotent."""
    # The body (List-Unsubscribe=One-Click, urlencoded or multipart) is deliberately not read:
    # the signed token is the whole authority, and mail providers differ in how they encode it.
    ref = ctx.tokens.open_unsubscribe_token(token)
    done = service.unsubscribe(session, ref, utcnow())
    return _unsubscribed(request, ctx, ref, done)


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
        preferences_token=ctx.tokens.preferences_token(row.id, row.token_nonce),
    )


# Preferences -----------------------------------------------------------------------------------


def _preferences(
    request: Request, token: str, row: Subscriber, *, status: int = 200, **extra: Any
) -> Response:
    paused = row.paused_until if row.paused_until and row.paused_until > utcnow() else None
    return render_page(
        request,
        "preferences.html",
        status=status,
        token=token,
        reader_name=row.name,
        email=row.email,
        active=row.status == SubscriberStatus.active,
        paused_until=paused,
        pause_choices=PAUSE_CHOICES,
        **extra,
    )


@router.get("/preferences/{token}", response_class=HTMLResponse)
def preferences_page(
    token: str, request: Request, ctx: ContextDep, session: SessionDep
) -> Response:
    """Show the preferences form (name, pause, leave)."""
    ref = ctx.tokens.open_preferences_token(token)
    row = service.get_subscriber_for_page(session, ref)
    return _preferences(request, token, row)


@router.post("/preferences/{token}", response_class=HTMLResponse)
async def save_preferences(
    token: str, request: Request, ctx: ContextDep, session: SessionDep
) -> Response:
    """Save the name and pause, or leave the list."""
    ref = ctx.tokens.open_preferences_token(token)
    form = await request.form()
    now = utcnow()
    row = service.get_subscriber_for_page(session, ref)
    if form.get("action") == "leave":
        done = service.unsubscribe(session, ref, now)
        return _unsubscribed(request, ctx, ref, done)
    raw_weeks = str(form.get("pause_weeks") or "0")
    try:
        weeks = int(raw_weeks)
        row = service.update_preferences(
            session, row.id, name=str(form.get("name") or ""), pause_weeks=weeks, now=now
        )
    except ValueError:
        return _preferences(request, token, row, status=422, error="Choose a pause from the list.")
    except InvalidInput as exc:
        # update_preferences checks everything before it changes anything.
        return _preferences(request, token, row, status=422, error=exc.message)
    return _preferences(request, token, row, saved=True)


# Archive and health ----------------------------------------------------------------------------


@router.get("/archive", response_class=HTMLResponse)
def archive_list(request: Request, session: SessionDep) -> Response:
    """List published issues, newest first."""
    return render_page(request, "archive.html", issues=archive.published_issues(session))


@router.get("/archive/{slug}", response_class=HTMLResponse)
def archive_issue(slug: str, ctx: ContextDep, session: SessionDep) -> Response:
    """Return the web version of one published issue."""
    issue = archive.published_issue(session, slug)
    html = archive.web_version(ctx.renderer, issue)
    return HTMLResponse(html, headers={"Cache-Control": "public, max-age=300"})


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    """Answer browsers' automatic icon request without a 404 in their console."""
    return Response(status_code=204, headers={"Cache-Control": "public, max-age=604800"})


@router.get("/healthz")
def healthz(ctx: ContextDep) -> Response:
    """Answer 200 when the database answers a SELECT 1, else 503."""
    try:
        # A connection of its own: health must not depend on (or commit) a request session.
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})
