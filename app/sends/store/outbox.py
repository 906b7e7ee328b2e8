"""The outbox ledger: confirmation and test emails, claimed and recorded like deliveries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from app.models import DeliveryStatus, Newsletter, OutboxMessage
from app.sends.store.commit import fence
from app.sends.store.frozen import newsletter_relay
from app.sends.store.lease import release_rows, uncounted_return
from app.sends.store.ledger import O, Result, RetryPolicy, is_postgres, record_rows


@dataclass(frozen=True)
class OutboxClaim:
    """One confirmation or test email handed to this worker."""

    outbox_id: int
    kind: str
    to_address: str
    subscriber_id: int | None
    issue_id: int | None
    attempts: int


def claim_outbox(
    session: Session, owner: str, limit: int, now: datetime, lease_seconds: int
) -> list[OutboxClaim]:
    """Lease up to `limit` due confirmation/test emails."""
    due = or_(
        # A pending row carries next_attempt_at when no relay could take it (defer_outbox).
        and_(
            OutboxMessage.status == DeliveryStatus.pending,
            or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),
        ),
        and_(OutboxMessage.status == DeliveryStatus.retry, OutboxMessage.next_attempt_at <= now),
    )
    pick = select(OutboxMessage.id).where(due).order_by(OutboxMessage.id).limit(limit)
    if is_postgres(session):
        pick = pick.with_for_update(skip_locked=True)
    picked = pick.cte("picked")  # runs once; see claim_batch
    rows = session.execute(
        update(O)
        .where(O.c.id.in_(select(picked.c.id)), due)
        .values(
            status=DeliveryStatus.sending,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=O.c.attempts + 1,
        )
        .returning(O.c.id, O.c.kind, O.c.to_address, O.c.subscriber_id, O.c.issue_id, O.c.attempts)
    ).all()
    return sorted((OutboxClaim(*r) for r in rows), key=lambda c: c.outbox_id)


def record_outbox(
    session: Session,
    owner: str,
    results: Sequence[Result],
    now: datetime,
    *,
    policy: RetryPolicy | None = None,
) -> None:
    """Record outbox results still leased by `owner`."""
    if results:
        record_rows(session, O, owner, results, now, policy or RetryPolicy())


def release_outbox(session: Session, owner: str, outbox_ids: Iterable[int]) -> None:
    """Give back claimed outbox messages never handed to SMTP."""
    release_rows(session, O, owner, list(outbox_ids))


def defer_outbox(
    session: Session, owner: str, outbox_ids: Sequence[int], until: datetime, why: str
) -> None:
    """Give back claimed outbox messages that never left, due again at `until`, uncounted.

    For messages no relay could take (all resting or over their daily quota): not an attempt,
    so a long outage never uses a confirmation's attempts up.
    """
    if outbox_ids:
        session.execute(
            update(O)
            .where(O.c.id.in_(list(outbox_ids)), *fence(O, owner))
            .values(**uncounted_return(O), next_attempt_at=until, last_reply=why[:500])
        )


def newsletter_relays(
    session: Session, newsletter_ids: Iterable[int], issue_ids: Iterable[int]
) -> tuple[dict[int, str | None], dict[int, str | None]]:
    """Return the relay each newsletter, and each issue's newsletter, names (None: the pool)."""
    by_newsletter: dict[int, str | None] = {
        nid: relay
        for nid, relay in session.execute(
            select(Newsletter.id, Newsletter.relay).where(Newsletter.id.in_(set(newsletter_ids)))
        )
    }
    by_issue = {issue_id: newsletter_relay(session, issue_id) for issue_id in set(issue_ids)}
    return by_newsletter, by_issue
