"""The built-in welcome email: a one-step sequence per newsletter (trigger "confirmed", PT0S).

It replaces the outbox's welcome message (issue 20): its step is an ordinary draft issue
(editors can edit it, pause the sequence, see its stats), and each welcome is a ledger row,
so it shows in the reader's deliveries and is sent once through crashes like any issue. A
reader enters it when their confirmation link activates their subscription to the
newsletter, in that transaction, and the first step is queued there and then (so the welcome
leaves as fast as the outbox one did). `MORNINGPOST_WELCOME_EMAIL=false` is simply that
nobody enters it: imports, editors' additions and readers who confirmed while it was off
never get it later. The sequence is made the first time a reader confirms the newsletter.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audience.newsletters import readers_of
from app.automations.sequences.progress import take_step
from app.automations.sequences.service import StepIn, add_step, current_steps
from app.automations.sequences.timing import step_due
from app.models import (
    DEFAULT_NEWSLETTER_ID,
    Issue,
    IssueStatus,
    OutboxKind,
    OutboxMessage,
    Sequence,
    SequenceReader,
    Subscriber,
)
from app.rendering.blocks import parse_blocks
from app.sends.store.ledger import freeze_recipients
from app.sends.store.rows import is_postgres

WELCOME = "welcome"

# The text of email_templates/welcome.mjml as blocks, with merge tags for the names.
SUBJECT = "Welcome to {{ newsletter }}"
PREHEADER = "You're subscribed. {{ newsletter }} arrives every morning from tomorrow."
BODY = """## Welcome aboard

Dear {{ name | "reader" }},

Thank you for confirming. From tomorrow, {{ newsletter }} arrives in this inbox each morning: \
the stories worth your coffee, in a few minutes of reading.

A few things that help:

- Add the address this email came from to your contacts, so the next issue lands in your \
inbox and not in spam.
- Going away? You can pause for a few weeks instead of leaving: "Manage preferences" below."""


def welcome_blocks() -> list[dict[str, Any]]:
    """Return the blocks of a newsletter's welcome email."""
    return parse_blocks([{"type": "masthead"}, {"type": "markdown", "body": BODY}])


def find_welcome(session: Session, newsletter_id: int) -> Sequence | None:
    """Return a newsletter's built-in welcome sequence, if it has been made."""
    return session.scalar(
        select(Sequence).where(Sequence.newsletter_id == newsletter_id, Sequence.builtin == WELCOME)
    )


def ensure_welcome(session: Session, newsletter_id: int, now: datetime) -> Sequence:
    """Return a newsletter's welcome sequence, making it (and its draft) the first time."""
    found = find_welcome(session, newsletter_id)
    if found is not None:
        return found
    try:
        # Two first confirmations at once: the unique (newsletter, builtin) keeps one.
        with session.begin_nested():
            template = Issue(
                slug=f"welcome-{newsletter_id}-{secrets.token_hex(4)}",
                subject=SUBJECT,
                preheader=PREHEADER,
                blocks=welcome_blocks(),
                status=IssueStatus.draft,
                newsletter_id=newsletter_id,
            )
            session.add(template)
            session.flush()
            seq = Sequence(
                name="Welcome email",
                trigger="confirmed",
                status="active",
                backfill=False,
                newsletter_id=newsletter_id,
                builtin=WELCOME,
                created_at=now,
            )
            session.add(seq)
            session.flush()
            add_step(session, seq, 0, StepIn(template.id, "PT0S", None))
            session.flush()
            return seq
    except IntegrityError:
        made = find_welcome(session, newsletter_id)
        if made is None:
            raise
        return made


def _had_old_welcome(session: Session, subscriber_id: int) -> bool:
    """Tell whether the reader got the welcome of before (an outbox message)."""
    return (
        session.scalar(
            select(OutboxMessage.id).where(
                OutboxMessage.subscriber_id == subscriber_id,
                OutboxMessage.kind == OutboxKind.welcome,
            )
        )
        is not None
    )


def enrol_welcome(
    session: Session, subscriber_id: int, newsletter_ids: list[int], now: datetime
) -> int:
    """Enter a reader who just confirmed into each newsletter's welcome; queue what is due.

    Once per reader and newsletter: confirming again later is not a first welcome. Returns
    how many welcome rows were queued now.
    """
    zone = session.scalar(select(Subscriber.timezone).where(Subscriber.id == subscriber_id))
    queued = 0
    for newsletter_id in newsletter_ids:
        if newsletter_id == DEFAULT_NEWSLETTER_ID and _had_old_welcome(session, subscriber_id):
            continue
        seq = ensure_welcome(session, newsletter_id, now)
        steps = current_steps(session, seq.id)
        first = step_due(now, steps[0].after, steps[0].at, zone or "UTC")
        insert = postgresql.insert if is_postgres(session) else sqlite.insert
        # RETURNING tells whether the row was new on both databases (a rowcount need not).
        entered = session.scalar(
            insert(SequenceReader)
            .values(
                sequence_id=seq.id,
                subscriber_id=subscriber_id,
                triggered_at=now,
                next_step=0,
                next_due_at=first,
            )
            .on_conflict_do_nothing(index_elements=["sequence_id", "subscriber_id"])
            .returning(SequenceReader.id)
        )
        if entered is None or seq.status != "active" or first > now:
            continue  # had it already; or the scheduler sends it when due (or resumed)
        # Due now: queued in this transaction, as the scheduler would (the same step taken).
        reader = session.get_one(SequenceReader, entered)
        following = steps[1] if len(steps) > 1 else None
        if not take_step(session, reader, steps[0], following, len(steps), zone or "UTC"):
            continue
        audience = and_(Subscriber.id == subscriber_id, readers_of(newsletter_id))
        queued += freeze_recipients(session, steps[0].carrier_issue_id, audience=audience)
    return queued
