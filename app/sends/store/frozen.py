"""The frozen content of a send: one send is one version.

`freeze_content` copies an issue's subject, preheader, slug and blocks into `frozen_issues` in
the transaction that moves it to `sending`, after the compare-and-set on its status (and
version): the issue's row is then locked (PostgreSQL) or the database is (SQLite), so the copy
is exactly the version that was checked and started, and no edit can commit beside it. The
worker renders only from here (`frozen_content`), so a later edit, a later wave of a local-time
send, resend-unknown or a worker restart all send the same text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import cast as typed

from sqlalchemy import Table, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.models import DEFAULT_NEWSLETTER_ID, FrozenIssue, Issue, Newsletter, Subscription
from app.sends.store.rows import is_postgres

F = typed(Table, FrozenIssue.__table__)


@dataclass(frozen=True)
class FrozenContent:
    """What a send renders: the issue's text as it was when the send started."""

    issue_id: int
    version: int
    subject: str
    preheader: str
    slug: str
    blocks: list[dict[str, Any]]
    frozen_at: datetime | None = None  # tells two sends under one id apart (SQLite reuses ids)


def freeze_content(session: Session, issue_id: int, now: datetime) -> None:
    """Copy the issue's content as the send's version; a send frozen already keeps its own.

    Call in the transaction that flipped the issue to `sending`, after the flip.
    """
    source = select(
        Issue.id,
        Issue.version,
        Issue.subject,
        Issue.preheader,
        Issue.slug,
        Issue.blocks,
        literal(now, F.c.frozen_at.type),
    ).where(Issue.id == issue_id)
    cols = ["issue_id", "version", "subject", "preheader", "slug", "blocks", "frozen_at"]
    # ON CONFLICT DO NOTHING (each dialect's own INSERT): a send frozen already keeps its own.
    dialect_insert = postgresql.insert if is_postgres(session) else sqlite.insert
    session.execute(
        dialect_insert(F)
        .from_select(cols, source)
        .on_conflict_do_nothing(index_elements=["issue_id"])
    )


def frozen_content(session: Session, issue_id: int, now: datetime) -> FrozenContent:
    """Return the content a started send sends.

    A send started by code that predates the freeze (or a row made by hand) has none yet: the
    first reader freezes it then, once, so every copy still carries one version.
    """
    row = session.get(FrozenIssue, issue_id)
    if row is None:
        if session.scalar(select(Issue.id).where(Issue.id == issue_id)) is None:
            raise NotFound(f"No issue {issue_id}.")
        freeze_content(session, issue_id, now)
        row = session.get_one(FrozenIssue, issue_id)
    return FrozenContent(
        row.issue_id,
        row.version,
        row.subject,
        row.preheader,
        row.slug,
        list(row.blocks),
        row.frozen_at,
    )


# What app.rendering.masthead.resolve takes from a newsletter's row.
_MASTHEAD_COLUMNS = (
    Newsletter.id,
    Newsletter.slug,
    Newsletter.is_default,
    Newsletter.name,
    Newsletter.tagline,
    Newsletter.from_address,
    Newsletter.reply_to,
    Newsletter.postal_address,
    Newsletter.list_id,
)


def _several(session: Session) -> bool:
    return (session.scalar(select(func.count()).select_from(Newsletter)) or 0) > 1


def newsletter_fields(session: Session, issue_id: int) -> dict[str, Any] | None:
    """Return the stored fields of the issue's newsletter (None: it has none any more).

    Read when a worker renders the issue, beside its frozen content: the masthead is the
    newsletter's as it stands then (app.rendering.masthead.resolve fills the gaps).
    """
    row = session.execute(
        select(*_MASTHEAD_COLUMNS)
        .join(Issue, Issue.newsletter_id == Newsletter.id)
        .where(Issue.id == issue_id)
    ).first()
    if row is None:
        return None
    return {**row._mapping, "several": _several(session)}


def reader_newsletter_fields(
    session: Session, subscriber_id: int, standings: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Return the stored fields of the newsletters a reader has one of these standings with.

    By newsletter id; a reader with none (one from before newsletters) gets the default
    newsletter's. Read when a confirmation or welcome email is built, so an editor's change
    of a newsletter's name shows in the next one.
    """
    rows = session.execute(
        select(*_MASTHEAD_COLUMNS)
        .join(Subscription, Subscription.newsletter_id == Newsletter.id)
        .where(Subscription.subscriber_id == subscriber_id, Subscription.status.in_(standings))
        .order_by(Newsletter.id)
    ).all()
    if not rows:
        rows = session.execute(
            select(*_MASTHEAD_COLUMNS).where(Newsletter.id == DEFAULT_NEWSLETTER_ID)
        ).all()
    several = _several(session)
    return [{**row._mapping, "several": several} for row in rows]


def newsletter_relay(session: Session, issue_id: int) -> str | None:
    """Return the relay the issue's newsletter names (None: the pool spreads it)."""
    return session.scalar(
        select(Newsletter.relay)
        .join(Issue, Issue.newsletter_id == Newsletter.id)
        .where(Issue.id == issue_id)
    )
