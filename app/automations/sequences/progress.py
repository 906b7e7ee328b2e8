"""A reader's progress through a sequence: the steps they are done with, by step key.

A reader's place is the set of steps they have had (or passed over), not a slot number, so
an edit that reorders, inserts or deletes steps can neither put a step they had into their
next slot nor move one they have not had behind them. Their next step is the first step, in
the current order, that they are not done with; `next_step` and `next_due_at` only say
where that is and when to look (what stats show and what the scheduler's index finds).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.automations.sequences.timing import step_due
from app.models import Sequence, SequenceReader, SequenceStep, Subscriber
from app.models.sequence import SequenceReaderStep
from app.sends.store.rows import is_postgres


def lock_sequence(session: Session, sequence_id: int) -> None:
    """Hold a sequence's row until commit, so its edits and scheduler runs take turns.

    Without it (on PostgreSQL) an edit could plan a reader's place from the steps they had
    while a worker was queuing one more, or a worker queue from steps an edit just changed.
    Both take the sequence's row before any reader's row, so they cannot deadlock.
    """
    # NO KEY UPDATE: enrolling a reader (a foreign key to this row) need not wait for it.
    session.execute(
        select(Sequence.id).where(Sequence.id == sequence_id).with_for_update(key_share=True)
    )


def done_keys(session: Session, reader_ids: Iterable[int]) -> dict[int, set[str]]:
    """Return the step keys each reader is done with (had or passed over)."""
    done: dict[int, set[str]] = defaultdict(set)
    ids = list(reader_ids)
    if not ids:
        return done
    rows = session.execute(
        select(SequenceReaderStep.reader_id, SequenceReaderStep.step_key).where(
            SequenceReaderStep.reader_id.in_(ids)
        )
    )
    for reader_id, key in rows:
        done[reader_id].add(key)
    return done


def owed(steps: list[SequenceStep], done: set[str]) -> list[SequenceStep]:
    """Return the steps a reader is not done with, in the sequence's current order."""
    return [step for step in steps if step.key not in done]


def mark_done(session: Session, reader_id: int, keys: list[str], skipped: bool) -> int:
    """Record steps as done for a reader; return how many were not done before."""
    if not keys:
        return 0
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    # The primary key (reader, step key) is what makes a step once-only per reader: of two
    # transactions taking the same step, the second inserts nothing. RETURNING counts what
    # was inserted (psycopg reports no rowcount for this INSERT).
    inserted = session.scalars(
        insert(SequenceReaderStep)
        .values([{"reader_id": reader_id, "step_key": k, "skipped": skipped} for k in keys])
        .on_conflict_do_nothing(index_elements=["reader_id", "step_key"])
        .returning(SequenceReaderStep.step_key)
    ).all()
    return len(inserted)


def take_step(
    session: Session,
    reader: SequenceReader,
    step: SequenceStep,
    following: SequenceStep | None,
    end: int,
    zone: str,
) -> bool:
    """Mark `step` done for a reader and move their place on; tell whether this caller took it.

    The caller adds the reader's ledger row to the step's carrier, in this transaction, only
    on True. Of two workers holding the same reader, the compare-and-set on `next_step` lets
    one move it; the done row's primary key lets a step be taken once, whatever the edits.
    """
    moved = session.execute(
        update(SequenceReader)
        .where(SequenceReader.id == reader.id, SequenceReader.next_step == reader.next_step)
        .values(
            next_step=following.position if following else end,
            last_carrier_id=step.carrier_issue_id,
            next_due_at=(
                step_due(reader.triggered_at, following.after, following.at, zone)
                if following
                else None
            ),
        )
        .execution_options(synchronize_session=False)
    )
    if not moved.rowcount:  # type: ignore[attr-defined]
        return False
    return mark_done(session, reader.id, [step.key], skipped=False) == 1


def replan(session: Session, sequence_id: int, steps: list[SequenceStep], added: set[str]) -> None:
    """After an edit, pass readers over the added steps behind their place; re-time the rest.

    The caller holds the sequence (`lock_sequence`) and has flushed the new steps.

    The rule for a step an edit adds (as ConvertKit and Mailchimp journeys do): a reader who
    has already had (or passed) as many steps as the new step's number is past its place and
    never gets it; one who has not gets it in its turn. Steps that were there before keep
    their identity wherever they move: each reader gets the ones they have not had, in the
    new order, and never one they had.
    """
    readers = session.execute(
        select(SequenceReader, Subscriber.timezone)
        .join(Subscriber, Subscriber.id == SequenceReader.subscriber_id)
        .where(SequenceReader.sequence_id == sequence_id, SequenceReader.next_due_at.is_not(None))
    ).all()
    done = done_keys(session, (reader.id for reader, _ in readers))
    for reader, zone in readers:
        had = done[reader.id]
        passed = [s.key for s in steps if s.key in added and s.position < len(had)]
        mark_done(session, reader.id, passed, skipped=True)
        left = owed(steps, had | set(passed))
        nxt = left[0] if left else None
        reader.next_step = nxt.position if nxt else len(steps)
        reader.next_due_at = step_due(reader.triggered_at, nxt.after, nxt.at, zone) if nxt else None


def reschedule(session: Session, reader: SequenceReader, step: SequenceStep, due: datetime) -> None:
    """Point a reader at their real next step and its time (an edit moved it since)."""
    session.execute(
        update(SequenceReader)
        .where(SequenceReader.id == reader.id, SequenceReader.next_step == reader.next_step)
        .values(next_step=step.position, next_due_at=due)
        .execution_options(synchronize_session=False)
    )
