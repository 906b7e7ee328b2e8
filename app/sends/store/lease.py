"""Leases held by a live worker: renew them, or hand rows back for later without an attempt."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, case, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.models import DeliveryStatus
from app.sends.store import commit
from app.sends.store.commit import fence
from app.sends.store.rows import D, O

CHUNK = 5000  # ids per statement: keeps parameter lists within every driver's limits
RENEW_EVERY_SECONDS = 5.0  # at most: a dead neighbour's leases are recognised by their age


def renew_interval(lease_seconds: float) -> float:
    """Return how often a live worker renews the leases of the rows it holds, in seconds."""
    return min(lease_seconds / 3, RENEW_EVERY_SECONDS)


def renew_leases(
    session: Session,
    owner: str,
    ids: Sequence[int],
    now: datetime,
    lease_seconds: int,
    *,
    table: Table = D,
) -> int:
    """Extend the lease of rows this worker still holds; return how many were renewed.

    Only rows still `sending` under this owner move: a row already recorded, or taken over
    after an expiry, is not ours to touch.
    """
    renewed = 0
    until = now + timedelta(seconds=lease_seconds)
    for start in range(0, len(ids), CHUNK):
        result = session.execute(
            update(table)
            .where(table.c.id.in_(ids[start : start + CHUNK]), *fence(table, owner))
            .values(lease_expires_at=until)
        )
        renewed += int(result.rowcount)  # type: ignore[attr-defined]
    return renewed


def uncounted_return(table: Table) -> dict[str, Any]:
    """Values that hand a claimed row back as if the claim had not counted as an attempt."""
    values: dict[str, Any] = {
        "status": case(
            (table.c.attempts > 1, DeliveryStatus.retry.value),
            else_=DeliveryStatus.pending.value,
        ),
        "attempts": table.c.attempts - 1,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if "handed_at" in table.c:
        values["handed_at"] = None
    return values


def hand_over(
    session: Session | Connection, owner: str, ids: Sequence[int], now: datetime
) -> set[int]:
    """Mark claimed rows as handed to SMTP; return the ids marked (only those may be sent).

    One cheap statement per small group, committed before the first byte of those messages
    is written: a claimed row without this mark was never attempted and goes back to the
    queue when its lease ends. The fence matters here too: a row whose lease another worker
    took over (this one stalled, or was judged dead) is not marked and must not be sent.
    """
    conn = session.connection() if isinstance(session, Session) else session
    return commit.hand_over(conn, owner, ids, now)


def defer(
    session: Session, owner: str, rows: Sequence[tuple[int, datetime]], now: datetime, why: str
) -> None:
    """Give claimed deliveries back, due again at the given times, without counting an attempt.

    One executemany: a first attempt returns to `pending`, a retry to `retry`; both carry
    next_attempt_at, which the claim honours.
    """
    if not rows:
        return
    stmt = (
        update(D)
        .where(D.c.id == bindparam("b_id"), *fence(D, owner))
        .values(
            **uncounted_return(D),
            next_attempt_at=bindparam("b_next", type_=D.c.next_attempt_at.type),
            last_reply=why,
            updated_at=now,
        )
    )
    session.connection().execute(stmt, [{"b_id": i, "b_next": t} for i, t in rows])


def release(session: Session, owner: str, delivery_ids: Iterable[int]) -> None:
    """Give back claimed deliveries never handed to SMTP (graceful shutdown)."""
    release_rows(session, D, owner, list(delivery_ids))


def release_rows(session: Session, table: Table, owner: str, ids: list[int]) -> None:
    if not ids:
        return
    session.execute(
        update(table)
        .where(table.c.id.in_(ids), *fence(table, owner))
        # A first attempt goes back to pending; a retry keeps its (already due) time.
        .values(**uncounted_return(table))
    )


@dataclass(frozen=True)
class Expired:
    """What an expiry pass did: rows back in the queue, rows whose fate is unknown."""

    requeued: int = 0
    unknown: int = 0

    def __bool__(self) -> bool:
        return bool(self.requeued or self.unknown)


def expire_leases(session: Session, now: datetime, owners: Sequence[str] = ()) -> Expired:
    """End leases that ran out (or, with `owners`, every lease of those dead workers).

    A delivery never handed to SMTP goes back to the queue, uncounted; one that was handed
    over (and outbox mail, which has no mark) may have reached the relay: `unknown`.
    """
    requeued = unknown = 0
    for table in (D, O):
        gone = table.c.lease_owner.in_(list(owners)) if owners else table.c.lease_expires_at < now
        stuck = (table.c.status == DeliveryStatus.sending, gone)
        extra = {"updated_at": now} if table is D else {}
        if table is D:
            back = session.execute(
                update(D)
                .where(*stuck, D.c.handed_at.is_(None))
                .values(
                    **uncounted_return(D),
                    last_reply="worker gone before sending it: back in the queue",
                    **extra,
                )
            )
            requeued += int(back.rowcount)  # type: ignore[attr-defined]
        result = session.execute(
            update(table)
            .where(*stuck)
            .values(
                status=DeliveryStatus.unknown,
                last_reply="worker gone while sending: the relay may have accepted it",
                lease_expires_at=None,
                **extra,
            )
        )
        unknown += int(result.rowcount)  # type: ignore[attr-defined]
    return Expired(requeued, unknown)


def lease_owners(session: Session, prefix: str, renewed_before: datetime) -> list[str]:
    """Return owners on this host (`prefix`) whose leases were not renewed lately.

    A live worker renews every few seconds, so its newest lease always ends well after
    `renewed_before`; only a stopped one (or a stalled one) is listed.
    """
    return list(
        session.scalars(
            select(D.c.lease_owner)
            .where(D.c.status == DeliveryStatus.sending, D.c.lease_owner.startswith(prefix))
            .group_by(D.c.lease_owner)
            .having(func.max(D.c.lease_expires_at) < renewed_before)
        )
    )
