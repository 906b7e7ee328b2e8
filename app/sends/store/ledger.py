"""The delivery ledger: freeze recipients, claim batches, record results (fenced by lease).

Services here take a Session and only flush; the caller owns the transaction. Every
statement is set-based: one INSERT…SELECT to freeze, one UPDATE…RETURNING per issue and
status to claim, one statement per outcome group to record (an executemany on SQLite).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.models import (
    Delivery,
    DeliveryStatus,
    Subscriber,
    SubscriberStatus,
    utcnow,
)
from app.models.subscriber import suppressed
from app.sends.policy import Outcome, RetryPolicy
from app.sends.store.claims import claim_batch, connection_of
from app.sends.store.commit import REPLY_MAX, outcome_groups, write_results
from app.sends.store.lease import release, release_rows
from app.sends.store.rows import Bounced, Claim, D, O, Result, is_postgres

# Re-exported: callers know these as parts of the ledger.
__all__ = [
    "REPLY_MAX",
    "Bounced",
    "Claim",
    "D",
    "O",
    "Result",
    "RetryPolicy",
    "claim_batch",
    "is_postgres",
    "outcome_groups",
    "release",
    "release_rows",
]
STATS_KEYS = ("pending", "sending", "sent", "retry", "failed", "unknown", "cancelled")


def eligible_readers(now: datetime) -> ColumnElement[bool]:
    """Return who may receive an issue now: active, not pausing, not suppressed."""
    return and_(
        Subscriber.status == SubscriberStatus.active,
        or_(Subscriber.paused_until.is_(None), Subscriber.paused_until <= now),
        ~suppressed(Subscriber.email_hash),
    )


def send_recipients(
    now: datetime, audience: ColumnElement[bool] | None = None
) -> ColumnElement[bool]:
    """Return who a send started now freezes: the eligible readers of `audience` (or all)."""
    return and_(eligible_readers(now), audience if audience is not None else true())


def count_send_recipients(
    session: Session, now: datetime, audience: ColumnElement[bool] | None = None
) -> int:
    """Count who a send started now would freeze (what a confirmation page states)."""
    query = select(func.count()).select_from(Subscriber).where(send_recipients(now, audience))
    return int(session.scalar(query) or 0)


def send_recipients_by_zone(
    session: Session, now: datetime, audience: ColumnElement[bool] | None = None
) -> dict[str, int]:
    """Count who a send started now would freeze, per time zone (a local-time send's plan)."""
    rows = session.execute(
        select(Subscriber.timezone, func.count())
        .where(send_recipients(now, audience))
        .group_by(Subscriber.timezone)
    ).all()
    return {str(zone): int(n) for zone, n in rows}


def freeze_recipients(
    session: Session,
    issue_id: int,
    due_by_zone: Mapping[str, datetime] | None = None,
    audience: ColumnElement[bool] | None = None,
) -> int:
    """Queue a pending delivery for every eligible reader (of `audience`, if given); count them.

    With `due_by_zone` (a local-time send) each row is due at its reader's zone's moment,
    held in next_attempt_at, which the claim honours; a zone not listed is due at once.
    `audience` is a condition on Subscriber (a segment's), compiled by the caller.
    """
    now = utcnow()
    ts = D.c.created_at.type
    due: Any = literal(None, ts)
    if due_by_zone:
        # One CASE over the few hundred zones readers use: still one INSERT ... SELECT.
        due = case(
            *((Subscriber.timezone == zone, literal(at, ts)) for zone, at in due_by_zone.items()),
            else_=literal(None, ts),
        )
    source = select(
        literal(issue_id),
        Subscriber.id,
        literal(DeliveryStatus.pending.value),
        literal(0),
        literal(now, ts),
        literal(now, ts),
        due,
    ).where(
        send_recipients(now, audience),
    )
    if _has_rows(session, issue_id):
        # Only a send that already has rows (a sequence step, an A/B rest) needs the check.
        # Left in for a first freeze, it let PostgreSQL plan a sequential scan of a table its
        # statistics called empty, once per reader, over the rows this very INSERT adds:
        # a 500k freeze on a new install ran for hours instead of seconds.
        source = source.where(
            ~exists().where(Delivery.issue_id == issue_id, Delivery.subscriber_id == Subscriber.id)
        )
    cols = [
        "issue_id",
        "subscriber_id",
        "status",
        "attempts",
        "created_at",
        "updated_at",
        "next_attempt_at",
    ]
    # No ON CONFLICT (it nearly doubles the cost): NOT EXISTS and start_send's CAS suffice.
    stmt = insert(D).from_select(cols, source)
    if not is_postgres(session):
        return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]
    # psycopg reports rowcount -1 here; count in the server instead of shipping every id.
    inserted = stmt.returning(D.c.id).cte("inserted")
    return int(session.scalar(select(func.count()).select_from(inserted)) or 0)


def _has_rows(session: Session, issue_id: int) -> bool:
    return session.scalar(select(D.c.id).where(D.c.issue_id == issue_id).limit(1)) is not None


def record_rows(
    session: Session | Connection,
    table: Table,
    owner: str,
    results: Sequence[Result],
    now: datetime,
    policy: RetryPolicy,
) -> list[tuple[int, int]]:
    """Write results (commit.write_results); return (subscriber, issue) of hard bounces."""
    write_results(connection_of(session), table, owner, results, now, policy)
    bounced = [r.row_id for r in results if r.suppress and r.outcome == Outcome.failed]
    if not bounced or table is not D:
        return []
    # Only the bounces whose fenced write applied (lease_owner stays as the record of who sent).
    return list(
        session.execute(
            select(Delivery.subscriber_id, Delivery.issue_id).where(
                Delivery.id.in_(bounced),
                Delivery.status == DeliveryStatus.failed,
                Delivery.lease_owner == owner,
                Delivery.subscriber_id.is_not(None),
            )
        )
    )


def record_results(
    session: Session,
    owner: str,
    results: Sequence[Result],
    now: datetime,
    *,
    policy: RetryPolicy | None = None,
) -> list[Bounced]:
    """Record delivery results still leased by `owner`; return the hard bounces, by issue.

    The caller acts on them (suppresses the addresses) in the same transaction.
    """
    if not results:
        return []
    bounced = record_rows(session, D, owner, results, now, policy or RetryPolicy())
    by_issue: dict[int, list[int]] = {}
    for subscriber_id, issue_id in bounced:
        by_issue.setdefault(issue_id, []).append(subscriber_id)
    return [Bounced(issue_id, tuple(ids)) for issue_id, ids in by_issue.items()]


def cancel_open(session: Session, issue_id: int) -> int:
    """Cancel the issue's deliveries not yet handed out; return how many."""
    result = session.execute(
        update(D)
        .where(
            D.c.issue_id == issue_id,
            D.c.status.in_([DeliveryStatus.pending, DeliveryStatus.retry]),
        )
        .values(status=DeliveryStatus.cancelled, last_reply="issue cancelled", updated_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def issue_stats(session: Session, issue_id: int) -> dict[str, int]:
    """Count an issue's deliveries by status, plus the total as `recipients`."""
    counts = dict.fromkeys(STATS_KEYS, 0)
    for status, n in session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.issue_id == issue_id)
        .group_by(Delivery.status)
    ):
        counts[status] = counts.get(status, 0) + int(n)
    return {"recipients": sum(counts.values()), **counts}
