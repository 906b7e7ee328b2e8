"""The sequence scheduler: enrol readers who matched a trigger, queue the steps that fell due.

A reader's next step is the first current step they are not done with (`progress.py`: by
step key, so edits neither resend nor skip). It is queued by adding the reader's ledger row
to the step's carrier issue, in the transaction that records the step done for them and
moves their `next_step` on with a compare-and-set: of two workers exactly one moves it, a
step is done once per reader (a primary key), and a crash loses or doubles nothing (all or
nothing commits; the ledger's unique (issue, subscriber) pair is the last guard). A reader's
next step waits until the previous step's row is no longer open, so steps arrive in order.
A reader who is no longer active or is suppressed leaves the sequence; one pausing their
mail waits.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from app.audience.newsletters import readers_of
from app.automations.sequences.progress import (
    done_keys,
    lock_sequence,
    owed,
    reschedule,
    take_step,
)
from app.automations.sequences.service import current_steps
from app.automations.sequences.timing import step_due
from app.context import Context
from app.db import session_scope
from app.models import (
    OPEN_STATUSES,
    Delivery,
    Sequence,
    SequenceReader,
    SequenceStep,
    Subscriber,
    SubscriberStatus,
    SubscriberTag,
    Subscription,
    utcnow,
)
from app.models.subscriber import suppressed
from app.sends.store.ledger import eligible_readers, freeze_recipients
from app.sends.store.rows import is_postgres

log = logging.getLogger("morningpost.sequences")

IDLE_SECONDS = 1.0
BATCH = 500


def enrol(session: Session, seq: Sequence, steps: list[SequenceStep], now: datetime) -> int:
    """Add the readers who matched the trigger (since the sequence began, or ever with backfill).

    Only readers of the sequence's newsletter: "confirmed" is the moment their subscription
    to it became active (their confirmation, for a reader of the default newsletter from
    before newsletters), and a tag counts for readers who take the newsletter.
    """
    moment: Any
    if seq.trigger.startswith("tag:"):
        moment = SubscriberTag.created_at
        query = select(Subscriber.id, moment, Subscriber.timezone).join(
            SubscriberTag,
            and_(
                SubscriberTag.subscriber_id == Subscriber.id, SubscriberTag.tag == seq.trigger[4:]
            ),
        )
    else:
        # An active subscription's updated_at is when it became active (it moves on status
        # changes only); a reader without one takes the default newsletter since confirming.
        # (An alias: readers_of's own EXISTS over subscriptions must not correlate to it.)
        joined = aliased(Subscription)
        moment = func.coalesce(joined.updated_at, Subscriber.confirmed_at)
        query = (
            select(Subscriber.id, moment, Subscriber.timezone)
            .outerjoin(
                joined,
                and_(
                    joined.subscriber_id == Subscriber.id,
                    joined.newsletter_id == seq.newsletter_id,
                ),
            )
            .where(Subscriber.confirmed_at.is_not(None))
        )
    query = query.where(
        readers_of(seq.newsletter_id),
        Subscriber.status == SubscriberStatus.active,
        ~exists().where(
            SequenceReader.sequence_id == seq.id, SequenceReader.subscriber_id == Subscriber.id
        ),
    )
    if not seq.backfill:
        query = query.where(moment >= seq.created_at)
    rows = session.execute(query.order_by(Subscriber.id).limit(BATCH)).all()
    if not rows:
        return 0
    first = steps[0]
    values = [
        {
            "sequence_id": seq.id,
            "subscriber_id": sub_id,
            "triggered_at": at,
            "next_step": 0,
            "next_due_at": step_due(at, first.after, first.at, zone),
        }
        for sub_id, at, zone in rows
    ]
    # Two schedulers may enrol the same reader: the unique pair keeps one, quietly.
    dialect_insert = postgresql.insert if is_postgres(session) else sqlite.insert
    session.execute(
        dialect_insert(SequenceReader)
        .values(values)
        .on_conflict_do_nothing(index_elements=["sequence_id", "subscriber_id"])
    )
    return len(values)


def advance(session: Session, seq: Sequence, steps: list[SequenceStep], now: datetime) -> int:
    """Queue each due step whose previous step is done; return how many rows were queued."""
    due = session.execute(
        select(SequenceReader, Subscriber.timezone)
        .join(Subscriber, Subscriber.id == SequenceReader.subscriber_id)
        .where(SequenceReader.sequence_id == seq.id, SequenceReader.next_due_at <= now)
        .order_by(SequenceReader.next_due_at)
        .limit(BATCH)
    ).all()
    if not due:
        return 0
    ids = [r.subscriber_id for r, _ in due]
    busy = {
        (row.issue_id, row.subscriber_id)
        for row in session.execute(
            select(Delivery.issue_id, Delivery.subscriber_id).where(
                Delivery.subscriber_id.in_(ids), Delivery.status.in_(OPEN_STATUSES)
            )
        )
    }
    eligible = set(
        session.scalars(select(Subscriber.id).where(Subscriber.id.in_(ids), eligible_readers(now)))
    )
    gone = set(
        session.scalars(
            select(Subscriber.id).where(
                Subscriber.id.in_(ids),
                (Subscriber.status != SubscriberStatus.active)
                | suppressed(Subscriber.email_hash)
                | ~readers_of(seq.newsletter_id),  # left the newsletter: no further step
            )
        )
    )
    done = done_keys(session, (reader.id for reader, _ in due))
    queued: dict[int, list[int]] = defaultdict(list)
    for reader, zone in due:
        if reader.subscriber_id in gone:
            _leave(session, reader.id)
            continue
        if reader.subscriber_id not in eligible:
            continue  # pausing their mail: the step waits
        if (reader.last_carrier_id, reader.subscriber_id) in busy:
            continue  # the previous step is still on its way: in order
        left = owed(steps, done[reader.id])
        if not left:
            _leave(session, reader.id)
            continue
        step = left[0]
        when = step_due(reader.triggered_at, step.after, step.at, zone)
        if when > now:
            reschedule(session, reader, step, when)
            continue
        following = left[1] if len(left) > 1 else None
        if take_step(session, reader, step, following, len(steps), zone):
            queued[step.carrier_issue_id].append(reader.subscriber_id)
    total = 0
    for carrier_id, sub_ids in queued.items():
        audience = and_(Subscriber.id.in_(sub_ids), readers_of(seq.newsletter_id))
        total += freeze_recipients(session, carrier_id, audience=audience)
    return total


def _leave(session: Session, reader_id: int) -> None:
    session.execute(
        update(SequenceReader)
        .where(SequenceReader.id == reader_id)
        .values(next_due_at=None)
        .execution_options(synchronize_session=False)
    )


def tick(ctx: Context, at: datetime | None = None) -> int:
    """Enrol and advance every active sequence once (as of `at`, default now); count rows queued."""
    with session_scope(ctx.sessions) as session:
        ids = list(session.scalars(select(Sequence.id).where(Sequence.status == "active")))
    total = 0
    for sequence_id in ids:
        with session_scope(ctx.sessions) as session:
            lock_sequence(session, sequence_id)  # an edit of it waits, or this for the edit
            seq = session.get(Sequence, sequence_id)
            if seq is None or seq.status != "active":
                continue
            steps = current_steps(session, seq.id)
            if not steps:
                continue
            now = at or utcnow()
            if seq.builtin is None:  # a built-in welcome enrols readers as they confirm
                enrol(session, seq, steps, now)
            session.flush()
            total += advance(session, seq, steps, now)
    return total
