"""Which newsletter a public page speaks for: the one it names, the reader's, or the default."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.audience import newsletters
from app.context import Context
from app.rendering.masthead import Masthead, from_settings
from app.web.pages import identity


def page_identity(session: Session, ctx: Context, slug: str | None = None) -> dict[str, Any]:
    """Return the identity a page shows: the named newsletter's, else the default one's."""
    head = newsletters.masthead_of(session, ctx.settings, slug) if slug else None
    return identity(head or _default(session, ctx))


def _default(session: Session, ctx: Context) -> Masthead:
    head = newsletters.masthead_of(session, ctx.settings)
    return head if head is not None else from_settings(ctx.settings)


def reader_identity(
    session: Session, ctx: Context, subscriber_id: int, standings: tuple[str, ...]
) -> dict[str, Any]:
    """Return the identity of a reader's first newsletter in these standings."""
    heads = newsletters.reader_mastheads(session, ctx.settings, subscriber_id, standings)
    return identity(heads[0])
