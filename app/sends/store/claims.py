"""Claiming a batch: lease due deliveries, read their readers, cancel those no longer wanted.

Part of the delivery ledger (ledger.py re-exports claim_batch): one UPDATE…RETURNING per
issue and status, then one read of the batch's readers. The caller owns the transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    Text,
    bindparam,
    cast,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.models import DeliveryStatus, Issue, IssueStatus, Subscriber, SubscriberStatus
from app.models.subscriber import suppressed
from app.sends.store.commit import fence
from app.sends.store.pg import int_array
from app.sends.store.rows import Claim, D, is_postgres


def claim_batch(
    session: Session,
    owner: str,
    limit: int,
    now: datetime,
    lease_seconds: int,
    *,
    domain: str = "morningpost.invalid",
    due_at: datetime | None = None,
) -> list[Claim]:
    """Lease up to `limit` due deliveries of sending issues; cancel those no longer wanted.

    A row is due when its next_attempt_at (a retry's backoff, a deferral, a local-time
    reader's moment) is at or before `due_at` (default `now`, which also starts the lease).

    Each claimed row gets its Message-ID (<mp.ISSUE.DELIVERY.RANDOM@domain>) before any SMTP
    traffic, so a row that ends up `unknown` can still be traced in the relay's logs.
    """
    issue_ids = session.scalars(
        select(Issue.id).where(Issue.status == IssueStatus.sending).order_by(Issue.id)
    ).all()
    rows: list[Any] = []
    for issue_id in issue_ids:
        # Due retries first (there are few), then fresh rows.
        for status in (DeliveryStatus.retry, DeliveryStatus.pending):
            if len(rows) < limit:
                rows += _claim_rows(
                    session,
                    issue_id,
                    status,
                    limit - len(rows),
                    owner,
                    (now, due_at or now),
                    lease_seconds,
                    domain,
                )
    if not rows:
        return []
    sub_ids = [r.subscriber_id for r in rows if r.subscriber_id is not None]
    subs = {
        s.id: s
        for s in connection_of(session).execute(
            select(
                Subscriber.id,
                Subscriber.email,
                Subscriber.status,
                Subscriber.token_nonce,
                Subscriber.name,
                # As stored: decoded only if the issue has merge tags (Claim.reader_attributes).
                cast(Subscriber.attributes, Text).label("attributes"),
                suppressed(Subscriber.email_hash).label("suppressed"),
            ).where(_among(Subscriber.id, sub_ids, is_postgres(session)))
        )
    }
    claims: list[Claim] = []
    cancelled: dict[str, list[int]] = {}
    for r in sorted(rows, key=lambda r: r.id):
        sub = subs.get(r.subscriber_id) if r.subscriber_id is not None else None
        if sub is None:
            why = "cancelled at claim: subscriber deleted"
        elif sub.status != SubscriberStatus.active:
            why = f"cancelled at claim: subscriber {sub.status}"
        elif sub.suppressed:
            why = "cancelled at claim: address suppressed"
        else:
            claims.append(
                Claim(
                    r.id,
                    r.issue_id,
                    sub.id,
                    sub.email,
                    r.attempts,
                    r.message_id,
                    sub.token_nonce,
                    sub.name or "",
                    attributes_json=sub.attributes,
                )
            )
            continue
        cancelled.setdefault(why, []).append(r.id)
    for why, ids in cancelled.items():
        session.execute(
            update(D)
            .where(D.c.id.in_(ids), *fence(D, owner))
            .values(
                status=DeliveryStatus.cancelled,
                last_reply=why,
                lease_expires_at=None,
                attempts=D.c.attempts - 1,  # nothing was attempted
                updated_at=now,
            )
        )
    return claims


def _among(column: Any, ids: list[int], postgres: bool) -> ColumnElement[bool]:
    """Return `column IN ids` with the ids as one parameter (an array, or JSON on SQLite).

    An IN list of a batch's thousand ids was a new statement on every claim: a thousand binds
    rendered, then parsed by the driver (psycopg) or prepared afresh (sqlite3). One parameter
    keeps the statement's text fixed, so it is compiled and prepared once.
    """
    if postgres:
        # A set to join, not `= ANY(CAST(:ids …))`: that cast is not folded before the scan,
        # and a plan without statistics (a fresh table) scanned every reader and parsed the
        # array again for each one (0.8 s a claim of 20,000 readers). unnest is read once and
        # joined: by the primary key, or by one hashed scan while the table has no statistics
        # (3-10 ms a claim either way; bench/claims.py prints the first claim's time).
        listed_pg = func.unnest(cast(bindparam("ids", int_array(ids), type_=Text), ARRAY(Integer)))
        return column.in_(select(listed_pg))
    listed = func.json_each(bindparam("ids", "[" + ",".join(map(str, ids)) + "]", type_=Text))
    return column.in_(select(listed.table_valued("value").c.value))


def _claim_rows(
    session: Session,
    issue_id: int,
    status: DeliveryStatus,
    limit: int,
    owner: str,
    times: tuple[datetime, datetime],
    lease_seconds: int,
    domain: str,
) -> list[Any]:
    """Lease up to `limit` due rows of one issue in one status; return what RETURNING gave."""
    now, due_at = times
    if status == DeliveryStatus.retry:
        due = D.c.next_attempt_at <= due_at
    else:  # a pending row carries next_attempt_at when a domain budget deferred it
        due = or_(D.c.next_attempt_at.is_(None), D.c.next_attempt_at <= due_at)
    live = select(Issue.id).where(Issue.id == issue_id, Issue.status == IssueStatus.sending)
    # Equality on issue and status walks ix_deliveries_issue_status_id in id order and stops
    # at the limit, so a claim costs the same at the start and at the end of a million-row
    # send. (An OR over statuses, or a join, let PostgreSQL gather and sort every open row
    # of the issue on each claim: quadratic over a send.)
    pick = (
        select(D.c.id)
        .where(D.c.issue_id == issue_id, D.c.status == status, due, live.exists())
        .order_by(D.c.id)
        .limit(limit)
    )
    if is_postgres(session):
        # Concurrent workers skip each other's rows instead of queueing behind them.
        pick = pick.with_for_update(skip_locked=True)
    # A CTE, not a plain IN (subquery): PostgreSQL may re-run a locking subquery per row, each
    # run skipping the rows the last one locked, and so claim far more than `limit`. A CTE
    # with FOR UPDATE is never inlined, so it runs exactly once.
    picked = pick.cte("picked")
    # A random tag makes Message-IDs unguessable: one received copy must not reveal the
    # others (a forged report naming a Message-ID could otherwise suppress any reader).
    if is_postgres(session):
        tag: ColumnElement[str] = func.replace(cast(func.gen_random_uuid(), String), "-", "")
    else:
        tag = func.lower(func.hex(func.randomblob(16)))
    msgid = (
        literal("<mp.")
        + cast(D.c.issue_id, String)
        + literal(".")
        + cast(D.c.id, String)
        + literal(".")
        + tag
        + literal(f"@{domain}>")
    )
    # On the session's connection (Core): the ORM's bulk-update bookkeeping has nothing to do
    # for a Table statement, yet cost the worker more than the statement itself.
    return list(
        connection_of(session)
        .execute(
            update(D)
            .where(D.c.id.in_(select(picked.c.id)), D.c.status == status, due)
            .values(
                status=DeliveryStatus.sending,
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=D.c.attempts + 1,
                message_id=msgid,
                handed_at=None,
                updated_at=now,
            )
            .returning(D.c.id, D.c.issue_id, D.c.subscriber_id, D.c.attempts, D.c.message_id)
        )
        .all()
    )


def connection_of(session: Session | Connection) -> Connection:
    """Return the Core connection under a session (or the connection itself)."""
    return session.connection() if isinstance(session, Session) else session
