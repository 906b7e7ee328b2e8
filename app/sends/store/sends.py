"""Sends in the store: start (freeze recipients), pause, resume, cancel, finish; all CAS-fenced.

Every status change of a send is a compare-and-set on the issue's status, so two callers (an
editor, a worker, the morning cron) never both win: the loser gets Conflict and nothing else
happens. Issue services call down into these; nothing here knows about rendering or HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, exists, select, update
from sqlalchemy import func as sa_func
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound
from app.models import OPEN_STATUSES, Delivery, DeliveryStatus, Issue, IssueStatus
from app.sends.store.frozen import freeze_content
from app.sends.store.ledger import cancel_open, freeze_recipients


@dataclass(frozen=True)
class Admit:
    """A gate's yes, naming who the issue goes to: a condition on Subscriber (None: everyone).

    The issues layer compiles it (newsletter, segment); the store only ANDs it into the freeze.
    """

    audience: ColumnElement[bool] | None = None


# Returns why an issue must not be sent now (the pre-send check's errors), or Admit / None
# to let it start (None: to every eligible reader, as before newsletters).
SendGate = Callable[[Session, int], str | Admit | None]
STARTABLE = (IssueStatus.draft, IssueStatus.scheduled)

# How a pause for a relay burst (watch.Burst) begins: resuming such a send undoes once more.
RELAY_BURST_PAUSE = "paused: the relay refused"


def _status_of(session: Session, issue_id: int) -> str:
    status = session.scalar(select(Issue.status).where(Issue.id == issue_id))
    if status is None:
        raise NotFound(f"No issue {issue_id}.")
    return str(status)


def start_send(
    session: Session,
    issue_id: int,
    now: datetime,
    version: int | None = None,
    audience: ColumnElement[bool] | None = None,
) -> int:
    """Flip a draft or scheduled issue to `sending`, freeze its content and recipients.

    Returns the recipient count. The flip is a compare-and-set on the status (and, given
    `version`, on the version the caller checked), so of two concurrent callers exactly one
    wins, and an edit committed after the caller's check makes this a Conflict instead of a
    send of unchecked text. The content and the recipients are frozen in the same transaction.
    """
    conditions = [Issue.id == issue_id, Issue.status.in_(STARTABLE)]
    if version is not None:
        conditions.append(Issue.version == version)
    flipped = session.execute(
        update(Issue)
        .where(*conditions)
        .values(status=IssueStatus.sending, started_at=now, pause_reason=None, alert=None)
        .returning(Issue.id, Issue.local_time, Issue.recipients, Issue.held_open)
        .execution_options(synchronize_session=False)
    ).first()
    if flipped is None:
        raise _lost_start(session, issue_id, version, STARTABLE)
    freeze_content(session, issue_id, now)
    if flipped.local_time is not None:
        return int(flipped.recipients)  # a local-time send froze its list when it was sent
    if flipped.held_open:
        return int(flipped.recipients)  # its owner (an automation) adds its rows
    count = freeze_recipients(session, issue_id, audience=audience)
    session.execute(
        update(Issue)
        .where(Issue.id == issue_id)
        .values(recipients=count)
        .execution_options(synchronize_session=False)
    )
    return count


def _lost_start(
    session: Session, issue_id: int, version: int | None, startable: tuple[IssueStatus, ...]
) -> Conflict:
    """Say why a start's compare-and-set matched nothing: another start, or a newer edit."""
    status = _status_of(session, issue_id)
    if status in startable and version is not None:
        return Conflict(
            f"Issue {issue_id} was edited while its send was being checked; nothing was sent. "
            "Look at it again and send it."
        )
    return Conflict(f"Issue {issue_id} is already {status}; it cannot be sent again.")


def schedule_send(session: Session, issue_id: int, send_at: datetime, version: int) -> None:
    """Schedule a draft (at the version the caller checked) for `send_at`, or raise Conflict."""
    flipped = session.execute(
        update(Issue)
        .where(Issue.id == issue_id, Issue.status == IssueStatus.draft, Issue.version == version)
        .values(status=IssueStatus.scheduled, send_at=send_at)
        .returning(Issue.id)
        .execution_options(synchronize_session=False)
    ).first()
    if flipped is None:
        raise _lost_start(session, issue_id, version, (IssueStatus.draft,))


def start_due_issues(session: Session, now: datetime, gate: SendGate | None = None) -> list[int]:
    """Start every scheduled issue whose send_at has passed; return the ids this call started.

    With a gate, an issue that fails it at this moment (edited after it was scheduled) is not
    sent: it goes back to `draft` with the reason in `pause_reason`, for the editor to see.
    """
    # The version is read before the gate runs: if an edit commits after it, the start's
    # compare-and-set fails and the next poll checks the new text (never unchecked text).
    due = session.execute(
        select(Issue.id, Issue.version)
        .where(Issue.status == IssueStatus.scheduled, Issue.send_at <= now)
        .order_by(Issue.send_at, Issue.id)
    ).all()
    started = []
    for issue_id, version in due:
        verdict = gate(session, issue_id) if gate is not None else None
        refusal = verdict if isinstance(verdict, str) else None
        if refusal:
            refused = session.execute(
                update(Issue)
                .where(
                    Issue.id == issue_id,
                    Issue.status == IssueStatus.scheduled,
                    Issue.version == version,
                )
                .values(
                    status=IssueStatus.draft,
                    pause_reason=f"not sent: {refusal}"[:500],
                    local_time=None,
                    local_date=None,
                    recipients=0,
                )
                .returning(Issue.id)
                .execution_options(synchronize_session=False)
            ).first()
            if refused is not None:
                # A local-time send froze its readers when it was sent. A draft holds none, so
                # its next send (now, later or local) freezes afresh; left, they kept their old
                # moments and a "send now" sent nothing now. None was claimed: only a sending
                # issue's rows are.
                session.execute(
                    delete(Delivery).where(
                        Delivery.issue_id == issue_id, Delivery.status == DeliveryStatus.pending
                    )
                )
            continue
        try:
            audience = verdict.audience if isinstance(verdict, Admit) else None
            start_send(session, issue_id, now, version, audience)
        except Conflict:
            continue  # another dispatcher or worker took it first, or an edit came after
        started.append(issue_id)
    return started


def flip_status(
    session: Session, issue_id: int, old: IssueStatus, new: IssueStatus, reason: str | None
) -> None:
    """Move a send from `old` to `new` (pause, resume), or raise Conflict if it is not `old`."""
    done = session.execute(
        update(Issue)
        .where(Issue.id == issue_id, Issue.status == old)
        .values(
            status=new,
            pause_reason=reason[:500] if reason else None,
            # Resuming means the editor dealt with it: the next problem raises a fresh alert.
            **({"alert": None} if new == IssueStatus.sending else {}),
        )
        .returning(Issue.id)
        .execution_options(synchronize_session=False)
    ).first()
    if done is None:
        status = _status_of(session, issue_id)
        raise Conflict(f"Issue {issue_id} is {status}, not {old}.")


def resume_send(session: Session, issue_id: int, now: datetime) -> bool:
    """Resume a paused send; after a relay burst, requeue the 5.1.x failures recorded meanwhile.

    Results in flight when the burst paused the send (in this worker or another process) may
    have been recorded as hard bounces since. Returns True when the pause was such a burst:
    the caller then lifts the suppressions those replies wrote, in this transaction.
    """
    reason = session.scalar(select(Issue.pause_reason).where(Issue.id == issue_id))
    flip_status(session, issue_id, IssueStatus.paused, IssueStatus.sending, None)
    if reason and reason.startswith(RELAY_BURST_PAUSE):
        requeue_relay_bounces(session, issue_id, now)
        return True
    return False


def cancel_send(
    session: Session, issue_id: int, now: datetime, stoppable: tuple[IssueStatus, ...]
) -> int:
    """Stop an issue in one of `stoppable`; its unsent deliveries become cancelled (counted)."""
    # Compare-and-set: a worker may be finishing the same issue at this very moment.
    stopped = session.execute(
        update(Issue)
        .where(Issue.id == issue_id, Issue.status.in_(stoppable))
        .values(status=IssueStatus.cancelled, finished_at=now)
        .returning(Issue.id)
        .execution_options(synchronize_session=False)
    ).first()
    if stopped is None:
        status = _status_of(session, issue_id)
        raise Conflict(f"Issue {issue_id} is {status}; only scheduled or sending issues stop.")
    return cancel_open(session, issue_id)


def finish_issues(session: Session, now: datetime) -> list[int]:
    """Mark sending issues without open deliveries as sent; return their ids.

    An issue `held_open` by its owner (rows are added to it over time) is never finished here.
    """
    open_rows = exists().where(Delivery.issue_id == Issue.id, Delivery.status.in_(OPEN_STATUSES))
    done = and_(Issue.status == IssueStatus.sending, Issue.held_open.is_(False), ~open_rows)
    # Two statements, on PostgreSQL: the first locks the issues that look done, waiting for
    # a transaction that holds one (resend-unknown queues rows and touches the issue); the
    # second, with a snapshot of its own, sees the rows that transaction queued. One UPDATE
    # alone read the rows as they were when it began, finished the send, and stranded them.
    ids = list(session.scalars(select(Issue.id).where(done).order_by(Issue.id).with_for_update()))
    if not ids:
        return []
    return list(
        session.scalars(
            update(Issue)
            .where(Issue.id.in_(ids), done)
            .values(status=IssueStatus.sent, finished_at=now)
            .returning(Issue.id)
            .execution_options(synchronize_session=False)
        )
    )


def requeue_unknown(session: Session, issue_id: int, now: datetime) -> int:
    """Put the issue's `unknown` deliveries back in the queue, once each; return how many.

    The editor's choice of at-least-once for the ambiguous few: some of these readers may get
    a second copy. A finished send becomes `sending` again so a worker picks them up.
    """
    status = _status_of(session, issue_id)
    if status not in (IssueStatus.sending, IssueStatus.paused, IssueStatus.sent):
        raise Conflict(f"Issue {issue_id} is {status}; only a started send can resend.")
    requeued = session.execute(
        update(Delivery)
        .where(
            Delivery.issue_id == issue_id,
            Delivery.status == DeliveryStatus.unknown,
            Delivery.requeued_at.is_(None),
        )
        .values(
            status=DeliveryStatus.retry,
            next_attempt_at=now,
            requeued_at=now,
            lease_owner=None,
            lease_expires_at=None,
            last_reply="sent again at an editor's request (the first copy may have arrived)",
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    count = int(requeued.rowcount)  # type: ignore[attr-defined]
    if count and status != IssueStatus.paused:
        # Written even when it read `sending`: a worker finishing the send at this moment
        # either waits for this row (and then sees the rows queued here) or has finished it,
        # and then this makes it `sending` again.
        session.execute(
            update(Issue)
            .where(Issue.id == issue_id, Issue.status.in_((IssueStatus.sending, IssueStatus.sent)))
            .values(status=IssueStatus.sending, finished_at=None)
            .execution_options(synchronize_session=False)
        )
    return count


def requeue_relay_bounces(session: Session, issue_id: int, now: datetime) -> int:
    """After a relay refused everyone alike: put those failed rows back in the queue; count them.

    The attempt is not counted: the mailbox was never asked. Lifting the suppressions those
    replies wrote is for the caller, in the same transaction (the worker's hooks).
    """
    requeued = session.execute(
        update(Delivery)
        .where(
            Delivery.issue_id == issue_id,
            Delivery.status == DeliveryStatus.failed,
            Delivery.last_reply.like("5% 5.1.%"),
        )
        .values(
            status=DeliveryStatus.retry,
            attempts=Delivery.attempts - 1,
            next_attempt_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return int(requeued.rowcount)  # type: ignore[attr-defined]


def set_alert(session: Session, issue_id: int, text: str, now: datetime) -> None:
    """Record the latest relay problem of a send (shown in its stats until it finishes)."""
    session.execute(
        update(Issue)
        .where(Issue.id == issue_id)
        .values(alert=text[:500], alert_at=now)
        .execution_options(synchronize_session=False)
    )


def start_local_send(
    session: Session,
    issue_id: int,
    now: datetime,
    due_by_zone: Mapping[str, datetime],
    local: tuple[str, str],
    version: int | None = None,
    audience: ColumnElement[bool] | None = None,
) -> tuple[int, IssueStatus]:
    """Freeze a draft's recipients now, each due at its own zone's moment; return (count, status).

    The issue is `sending` once its first reader is due (at once if anyone's moment has
    passed), else `scheduled` with send_at at that first moment, when the worker or the cron
    starts it without freezing the list again. The content is frozen when it turns `sending`.
    Only a draft can be sent (at `version`, when given): anything else is Conflict.
    """
    conditions = [Issue.id == issue_id, Issue.status == IssueStatus.draft]
    if version is not None:
        conditions.append(Issue.version == version)
    flipped = session.execute(
        update(Issue)
        .where(*conditions)
        .values(
            status=IssueStatus.scheduled,
            local_time=local[0],
            local_date=local[1],
            pause_reason=None,
            alert=None,
        )
        .returning(Issue.id)
        .execution_options(synchronize_session=False)
    ).first()
    if flipped is None:
        raise _lost_start(session, issue_id, version, (IssueStatus.draft,))
    count = freeze_recipients(session, issue_id, due_by_zone, audience)
    first = session.scalar(
        select(sa_func.min(sa_func.coalesce(Delivery.next_attempt_at, now))).where(
            Delivery.issue_id == issue_id
        )
    )
    first = now if first is None or first <= now else first
    status = IssueStatus.sending if first <= now else IssueStatus.scheduled
    session.execute(
        update(Issue)
        .where(Issue.id == issue_id)
        .values(
            status=status,
            recipients=count,
            send_at=first,
            started_at=now if status == IssueStatus.sending else None,
        )
        .execution_options(synchronize_session=False)
    )
    if status == IssueStatus.sending:
        freeze_content(session, issue_id, now)
    return count, status


def waves(
    session: Session, issue_id: int, now: datetime
) -> tuple[int, datetime | None, datetime | None]:
    """Return (readers not yet due, when the next is due, when the last is due) of a send."""
    later = session.execute(
        select(
            sa_func.count(),
            sa_func.min(Delivery.next_attempt_at),
            sa_func.max(Delivery.next_attempt_at),
        ).where(
            Delivery.issue_id == issue_id,
            Delivery.status == DeliveryStatus.pending,
            Delivery.next_attempt_at > now,
        )
    ).one()
    return int(later[0]), later[1], later[2]
