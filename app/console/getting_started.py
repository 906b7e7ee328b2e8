"""The getting-started checklist an empty dashboard shows: four steps to a first morning."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.models import (
    DEFAULT_NEWSLETTER_ID,
    Issue,
    Newsletter,
    OutboxKind,
    OutboxMessage,
    Subscriber,
)


@dataclass(frozen=True)
class Step:
    """One step: what to do, whether it is done, where to do it."""

    title: str
    detail: str
    done: bool
    href: str
    action: str


def checklist(session: Session, settings: Settings) -> list[Step]:
    """Return the steps to a first send; the dashboard shows them until all are done."""
    # Set in the default newsletter's own settings or in the environment: either counts.
    default = session.get(Newsletter, DEFAULT_NEWSLETTER_ID)
    own_from = default.from_address if default else None
    own_postal = default.postal_address if default else None
    sender_set = bool(own_from or settings.from_address) and bool(
        own_postal or settings.postal_address
    )
    has_readers = bool(session.scalar(select(exists().where(Subscriber.id.is_not(None)))))
    first_issue = session.scalar(select(Issue.id).order_by(Issue.id).limit(1))
    tested = bool(session.scalar(select(exists().where(OutboxMessage.kind == OutboxKind.test))))
    return [
        Step(
            "Set who it is from and your postal address",
            "In the newsletter's settings (or MORNINGPOST_FROM and MORNINGPOST_POSTAL_ADDRESS): "
            "replies reach you, and the footer carries the address the law asks for.",
            sender_set,
            f"/editor/newsletters/{DEFAULT_NEWSLETTER_ID}",
            "Set them",
        ),
        Step(
            "Add your readers",
            "One by one, or import a CSV with email and name columns.",
            has_readers,
            "/editor/subscribers/import",
            "Import readers",
        ),
        Step(
            "Write the first issue",
            "In Markdown, with a live preview beside it; it saves as you type.",
            first_issue is not None,
            "/editor/issues/new",
            "Write it",
        ),
        Step(
            "Send yourself a test copy",
            "See it in your own inbox before anyone else does.",
            tested,
            f"/editor/issues/{first_issue}" if first_issue else "/editor/issues/new",
            "Send a test",
        ),
    ]
