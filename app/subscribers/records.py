"""Find one subscriber (by id, address or list token), set its status, check suppression."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.models import Subscriber, SubscriberStatus
from app.models.subscriber import suppressed
from app.tokens import ListToken, hash_secret


def is_suppressed(session: Session, email: str) -> bool:
    """Tell whether a normalised address is on the suppression list."""
    return bool(session.scalar(select(suppressed(hash_secret(email)))))


def get_subscriber(session: Session, subscriber_id: int) -> Subscriber:
    """Return one subscriber or raise NotFound."""
    row = session.get(Subscriber, subscriber_id)
    if row is None:
        raise NotFound(f"No subscriber {subscriber_id}.")
    return row


def _by_email(session: Session, email: str, *, lock: bool = False) -> Subscriber | None:
    stmt = select(Subscriber).where(Subscriber.email == email)
    if lock:
        # Serialises two sign-ups for one address on PostgreSQL; SQLite's BEGIN IMMEDIATE does it.
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def _set_status(row: Subscriber, status: SubscriberStatus, now: datetime) -> None:
    if row.status != status:
        row.status = status
        row.status_changed_at = now


def _by_token(session: Session, ref: ListToken, *, lock: bool = False) -> Subscriber | None:
    """Return the row a list token names, or None when erased or the id now names another."""
    row = session.get(Subscriber, ref.subscriber_id, with_for_update=lock)
    if row is None or (ref.nonce is not None and row.token_nonce != ref.nonce):
        return None
    return row
