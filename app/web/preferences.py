"""The reader's preferences page: name, pause, time zone, newsletters, or leave everything."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from app.audience import newsletters
from app.config import Settings
from app.config.timezones import time_zone_names
from app.deps import ContextDep, SessionDep
from app.errors import InvalidInput
from app.models import Subscriber, SubscriberStatus, utcnow
from app.rendering.masthead import from_settings
from app.subscribers import service
from app.web.pages import identity, render_page
from app.web.site import page_identity
from app.web.unsubscribe import unsubscribed_page

# Test copies and previews carry tokens of subscriber 0, who never exists (see the worker).
TEST_COPY_READER = 0

router = APIRouter(tags=["public"])

PAUSE_CHOICES = (0, 1, 2, 4, 8)


async def read_form(request: Request) -> dict[str, str]:
    """Return a posted form's text fields (files are ignored)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def read_newsletter_boxes(request: Request) -> list[str]:
    """Return the ticked `newsletters` boxes of a posted form (a repeated field)."""
    form = await request.form()
    return [v[:80] for v in form.getlist("newsletters")[:50] if isinstance(v, str)]


# Plain `def` handlers, as in app.web.signup: a database call never blocks the event loop.


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
        return render_page(
            request, "test_copy.html", **page_identity(session, ctx), what="preferences"
        )
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
        return render_page(
            request, "test_copy.html", **page_identity(session, ctx), what="preferences"
        )
    now = utcnow()
    row = service.get_subscriber_for_page(session, ref)
    if form.get("action") == "leave":
        done = service.unsubscribe(session, ref, now)
        return unsubscribed_page(request, ctx, ref, done, **page_identity(session, ctx))
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
        service.choose_newsletters(session, ref, set(chosen), now)
    return _preferences(request, token, row, session, ctx.settings, saved=True)
