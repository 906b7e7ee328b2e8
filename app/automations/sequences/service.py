"""Sequences: create, read, edit, pause, delete, and their stats.

Each step version has a carrier issue: a hidden copy of the step's template draft, in status
`sending` and `held_open`, whose content is frozen like any send's. The scheduler
(`scheduler.py`) adds one ledger row per reader to it when the reader's step falls due, so the
send core delivers, records, retries and crash-recovers it like any other send and never
learns that a sequence exists. Editing a step's draft makes a new carrier for later readers;
readers who had the step keep their row on the old one, and never get it again: a step keeps
its key through edits and moves, and a reader's place is the keys they are done with
(`progress.py`), so reordering, inserting or deleting steps neither resends nor skips one.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.audience.newsletters import by_slug
from app.automations.durations import parse_duration
from app.automations.sequences.progress import lock_sequence, replan
from app.automations.sequences.timing import parse_at
from app.errors import Conflict, InvalidInput, NotFound
from app.models import (
    OPEN_STATUSES,
    Delivery,
    Issue,
    IssueStatus,
    Sequence,
    SequenceReader,
    SequenceStep,
    utcnow,
)
from app.sends.store.frozen import freeze_content
from app.sends.store.sends import cancel_send

STATUSES = ("active", "paused")
MAX_STEPS = 20


@dataclass(frozen=True)
class StepIn:
    """A step as asked for: its template issue, its delay and its optional time of day."""

    issue: int
    after: str
    at: str | None


def parse_trigger(trigger: Any) -> str:
    """Return the stored form of a trigger: "confirmed" or "tag:<tag>"."""
    if trigger == "confirmed":
        return "confirmed"
    if isinstance(trigger, dict) and set(trigger) == {"tag"} and isinstance(trigger["tag"], str):
        tag = trigger["tag"].strip().lower()
        if tag and len(tag) <= 64:
            return f"tag:{tag}"
    raise InvalidInput('trigger is "confirmed" or {"tag": "<tag>"}.')


def trigger_out(stored: str) -> str | dict[str, str]:
    """Return a stored trigger in its JSON form."""
    return {"tag": stored[4:]} if stored.startswith("tag:") else stored


def parse_steps(session: Session, raw: Any, newsletter_id: int) -> list[StepIn]:
    """Check the steps: each names a draft of the newsletter, a delay and maybe a time of day."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_STEPS:
        raise InvalidInput(f"steps is a list of 1 to {MAX_STEPS} steps.")
    steps = []
    for n, item in enumerate(raw, 1):
        if not isinstance(item, dict) or not isinstance(item.get("issue"), int):
            raise InvalidInput(f'Step {n} needs "issue": the id of a draft issue.')
        issue = session.get(Issue, item["issue"])
        if issue is None or issue.held_open:
            raise InvalidInput(f"Step {n}: there is no issue {item['issue']}.")
        if issue.status != IssueStatus.draft:
            raise InvalidInput(f"Step {n}: issue {issue.id} is {issue.status}; use a draft.")
        if issue.newsletter_id != newsletter_id:
            # Its masthead, sender and unsubscribe link would be another newsletter's.
            raise InvalidInput(f"Step {n}: issue {issue.id} belongs to another newsletter.")
        after = item.get("after", "PT0S")
        parse_duration(after)
        steps.append(StepIn(issue.id, str(after).strip().upper(), parse_at(item.get("at"))))
    return steps


def _carrier(session: Session, template_id: int, sequence_id: int, position: int) -> int:
    """Copy a template draft into a new held-open carrier issue with its content frozen."""
    template = session.get_one(Issue, template_id)
    now = utcnow()
    carrier = Issue(
        slug=f"sequence-{sequence_id}-step-{position + 1}-{secrets.token_hex(4)}",
        subject=template.subject,
        preheader=template.preheader,
        blocks=list(template.blocks),
        status=IssueStatus.sending,
        held_open=True,
        automation="sequence",
        started_at=now,
        newsletter_id=template.newsletter_id,  # its masthead, sender and unsubscribe link
    )
    session.add(carrier)
    session.flush()
    freeze_content(session, carrier.id, now)
    return carrier.id


def add_step(
    session: Session, seq: Sequence, position: int, step: StepIn, key: str | None = None
) -> SequenceStep:
    """Add a step version (a new step, or a new version of step `key`) with a new carrier."""
    version = session.get_one(Issue, step.issue).version
    row = SequenceStep(
        sequence_id=seq.id,
        position=position,
        template_issue_id=step.issue,
        template_version=version,
        carrier_issue_id=_carrier(session, step.issue, seq.id, position),
        after=step.after,
        at=step.at,
        key=key or secrets.token_hex(8),
    )
    session.add(row)
    return row


def create_sequence(
    session: Session,
    name: str,
    trigger: Any,
    raw_steps: Any,
    backfill: bool,
    newsletter: str | None = None,
) -> Sequence:
    """Create an active sequence of a newsletter (by slug; None: the default one).

    Readers who matched before now get it only with backfill.
    """
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidInput("name is 1 to 200 characters.")
    stored = parse_trigger(trigger)
    newsletter_id = by_slug(session, newsletter).id
    steps = parse_steps(session, raw_steps, newsletter_id)
    seq = Sequence(
        name=name.strip(),
        trigger=stored,
        status="active",
        backfill=bool(backfill),
        newsletter_id=newsletter_id,
    )
    session.add(seq)
    session.flush()
    for position, step in enumerate(steps):
        add_step(session, seq, position, step)
    session.flush()
    return seq


def get_sequence(session: Session, sequence_id: int) -> Sequence:
    """Return one sequence or raise NotFound."""
    seq = session.get(Sequence, sequence_id)
    if seq is None:
        raise NotFound(f"No sequence {sequence_id}.")
    return seq


def list_sequences(session: Session) -> list[Sequence]:
    """Return every sequence, oldest first."""
    return list(session.scalars(select(Sequence).order_by(Sequence.id)))


def current_steps(session: Session, sequence_id: int) -> list[SequenceStep]:
    """Return the current version of each step, in order."""
    return list(
        session.scalars(
            select(SequenceStep)
            .where(SequenceStep.sequence_id == sequence_id, SequenceStep.current.is_(True))
            .order_by(SequenceStep.position)
        )
    )


def update_sequence(
    session: Session,
    sequence_id: int,
    name: str | None,
    status: str | None,
    raw_steps: Any | None,
    now: datetime,
) -> Sequence:
    """Rename, pause or resume, or replace the steps (changed ones become new versions)."""
    seq = get_sequence(session, sequence_id)
    if name is not None:
        if not name.strip() or len(name) > 200:
            raise InvalidInput("name is 1 to 200 characters.")
        seq.name = name.strip()
    if status is not None:
        if status not in STATUSES:
            raise InvalidInput('status is "active" or "paused".')
        seq.status = status
        if status == "active":
            held_carriers_reopen(session, seq.id)
    if raw_steps is not None:
        _replace_steps(session, seq, parse_steps(session, raw_steps, seq.newsletter_id), now)
    session.flush()
    return seq


def _replace_steps(session: Session, seq: Sequence, steps: list[StepIn], now: datetime) -> None:
    """Make `steps` the sequence's steps, keeping each existing step's identity (its key).

    A step is the draft it sends: each asked-for step is matched to a current step with the
    same template issue (in order, if a draft is used twice). A different draft put in the
    slot of a current step whose own draft is no longer asked for replaces it (a new version,
    as editing that step's text would make). A match keeps its key: the same row moved and
    re-timed if its content is unchanged, a new version (a new carrier for later readers) if
    not. Any other draft is a new step; a current step left unmatched is deleted. Readers'
    progress then follows the keys (`progress.replan`), not the slot numbers.
    """
    lock_sequence(session, seq.id)
    old = current_steps(session, seq.id)
    by_draft: dict[int | None, list[SequenceStep]] = defaultdict(list)
    for row in old:
        by_draft[row.template_issue_id].append(row)
    matches = [by_draft[step.issue].pop(0) if by_draft[step.issue] else None for step in steps]
    unmatched = {row.id for pool in by_draft.values() for row in pool}
    for position, match in enumerate(matches):
        if match is None and position < len(old) and old[position].id in unmatched:
            matches[position] = old[position]
            unmatched.discard(old[position].id)
    added: set[str] = set()
    for position, (step, had) in enumerate(zip(steps, matches, strict=True)):
        if had is None:
            added.add(add_step(session, seq, position, step).key)
            continue
        version = session.get_one(Issue, step.issue).version
        if (had.template_issue_id, had.template_version) == (step.issue, version):
            # Its content is unchanged (a carrier is frozen content): only where and when.
            had.position, had.after, had.at = position, step.after, step.at
            continue
        had.current = False
        add_step(session, seq, position, step, had.key)
    for row in old:
        if row.id in unmatched:
            row.current = False
    session.flush()
    replan(session, seq.id, current_steps(session, seq.id), added)


def delete_sequence(session: Session, sequence_id: int, now: datetime) -> None:
    """Stop a sequence for good: steps queued and not yet sent are cancelled."""
    seq = get_sequence(session, sequence_id)
    if seq.builtin is not None:
        # The next confirmation would create it again: pausing is the way to stop it.
        raise Conflict(f"Sequence {seq.id} is built in; pause it instead of deleting it.")
    carriers = session.scalars(
        select(SequenceStep.carrier_issue_id)
        .join(Issue, Issue.id == SequenceStep.carrier_issue_id)
        .where(
            SequenceStep.sequence_id == seq.id,
            Issue.status.in_((IssueStatus.sending, IssueStatus.paused)),
        )
    ).all()
    for carrier_id in carriers:
        cancel_send(session, carrier_id, now, (IssueStatus.sending, IssueStatus.paused))
    session.delete(seq)
    session.flush()


def sequence_stats(session: Session, sequence_id: int, now: datetime) -> dict[str, Any]:
    """Return each step's due, sent, failed and unknown counts, and the readers still on the way."""
    get_sequence(session, sequence_id)
    steps = current_steps(session, sequence_id)
    # Every version of a step counts, wherever the step has moved since: by key.
    by_key: dict[str, dict[str, int]] = {}
    counts = session.execute(
        select(SequenceStep.key, Delivery.status, func.count())
        .join(Delivery, Delivery.issue_id == SequenceStep.carrier_issue_id)
        .where(SequenceStep.sequence_id == sequence_id)
        .group_by(SequenceStep.key, Delivery.status)
    ).all()
    for key, status, count in counts:
        by_key.setdefault(key, {})[str(status)] = int(count)
    waiting = dict(
        session.execute(
            select(SequenceReader.next_step, func.count())
            .where(SequenceReader.sequence_id == sequence_id, SequenceReader.next_due_at <= now)
            .group_by(SequenceReader.next_step)
        ).all()
    )
    out = []
    for step in steps:
        c = by_key.get(step.key, {})
        queued = sum(c.get(str(s), 0) for s in OPEN_STATUSES)
        out.append(
            {
                "issue": step.template_issue_id,
                "carrier": step.carrier_issue_id,
                "after": step.after,
                "at": step.at,
                "due": queued + int(waiting.get(step.position, 0)),
                "sent": c.get("sent", 0),
                "failed": c.get("failed", 0),
                "unknown": c.get("unknown", 0),
            }
        )
    active = session.scalar(
        select(func.count()).where(
            SequenceReader.sequence_id == sequence_id, SequenceReader.next_due_at.is_not(None)
        )
    )
    return {"steps": out, "active_readers": int(active or 0)}


def held_carriers_reopen(session: Session, sequence_id: int) -> None:
    """Put a step's carrier back to `sending` if the worker paused it (an editor resumes)."""
    session.execute(
        update(Issue)
        .where(
            Issue.id.in_(
                select(SequenceStep.carrier_issue_id).where(SequenceStep.sequence_id == sequence_id)
            ),
            Issue.status == IssueStatus.paused,
        )
        .values(status=IssueStatus.sending, pause_reason=None)
        .execution_options(synchronize_session=False)
    )
