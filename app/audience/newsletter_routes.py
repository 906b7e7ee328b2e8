"""Editor API for newsletters: list, create, read, change."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.audience import newsletters
from app.audience.newsletter_schemas import NewsletterIn, NewsletterOut, NewsletterPatch
from app.config import Settings
from app.deps import ContextDep, IdPath, SessionDep, require_editor
from app.models import Newsletter, utcnow

newsletters_router = APIRouter(
    prefix="/newsletters", tags=["newsletters"], dependencies=[Depends(require_editor)]
)


def _out(row: Newsletter, settings: Settings) -> NewsletterOut:
    inherited = [
        "from" if f == "from_address" else f
        for f in newsletters.TEXT_FIELDS
        if not getattr(row, f) and f != "reply_to"
    ]
    return NewsletterOut.of(newsletters.masthead(row, settings), inherited, row.relay)


def _relay_names(settings: Settings) -> list[str]:
    return [spec.name for spec in settings.relays]


@newsletters_router.get("", response_model=list[NewsletterOut])
def list_newsletters(session: SessionDep, ctx: ContextDep) -> list[NewsletterOut]:
    """List every newsletter, the default first."""
    return [_out(row, ctx.settings) for row in newsletters.list_newsletters(session)]


@newsletters_router.post("", response_model=NewsletterOut, status_code=201)
def create_newsletter(body: NewsletterIn, session: SessionDep, ctx: ContextDep) -> NewsletterOut:
    """Add a newsletter."""
    row = newsletters.create_newsletter(
        session, body.model_dump(), utcnow(), relays=_relay_names(ctx.settings)
    )
    return _out(row, ctx.settings)


@newsletters_router.get("/{newsletter_id}", response_model=NewsletterOut)
def get_newsletter(newsletter_id: IdPath, session: SessionDep, ctx: ContextDep) -> NewsletterOut:
    """Show one newsletter."""
    return _out(newsletters.get_newsletter(session, newsletter_id), ctx.settings)


@newsletters_router.patch("/{newsletter_id}", response_model=NewsletterOut)
def update_newsletter(
    newsletter_id: IdPath, body: NewsletterPatch, session: SessionDep, ctx: ContextDep
) -> NewsletterOut:
    """Change a newsletter's fields; null puts one back to the environment's setting."""
    changes = body.model_dump(exclude_unset=True)
    row = newsletters.update_newsletter(
        session, newsletter_id, changes, utcnow(), relays=_relay_names(ctx.settings)
    )
    return _out(row, ctx.settings)
