"""Subscribers and the suppression list."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ColumnElement, Index, SQLColumnExpression, String, exists
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, utcnow

if TYPE_CHECKING:
    from app.models.audience import SubscriberTag
from app.tokens import new_nonce


class SubscriberStatus(enum.StrEnum):
    """Where a subscriber stands; only `active` ones receive issues."""

    pending = "pending"
    active = "active"
    unsubscribed = "unsubscribed"
    bounced = "bounced"
    complained = "complained"


class Subscriber(Base):
    """One address on the list, with the consent trail that put it there."""

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    # SHA-256 of the normalised address: lets suppression entries match without keeping it.
    email_hash: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default=SubscriberStatus.pending)
    consent_source: Mapped[str] = mapped_column(String(32), default="")
    consent_ip: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmation_sent_at: Mapped[datetime | None] = mapped_column(default=None)
    confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(default=None)
    paused_until: Mapped[datetime | None] = mapped_column(default=None)
    # IANA name (e.g. "Europe/Berlin"): local-time sends reach the reader at their own hour.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # Part of every list token: a token names this row, not merely whoever holds this id.
    token_nonce: Mapped[str] = mapped_column(String(8), default=new_nonce)
    # Editor-set facts about the reader (plan, company, …): strings, numbers and booleans.
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    # Read-only, loaded with the row in one extra query per page (selectin); the database
    # deletes them with the reader (ON DELETE CASCADE).
    tag_rows: Mapped[list[SubscriberTag]] = relationship(
        lazy="selectin", order_by="SubscriberTag.tag", viewonly=True
    )

    @property
    def tags(self) -> list[str]:
        """Return the reader's tags, sorted."""
        return [row.tag for row in self.tag_rows]

    # AUTOINCREMENT: SQLite would otherwise give an erased subscriber's id to the next one.
    __table_args__ = (
        Index("ix_subscribers_status_id", "status", "id"),
        {"sqlite_autoincrement": True},
    )


class Suppression(Base):
    """An address we must never mail again, kept as a hash with why and since when."""

    __tablename__ = "suppressions"
    # Two requests deleting the row at once both succeed (PostgreSQL lets both try): the
    # second deletes nothing, which is the outcome wanted (issue 17), not a stale-data error.
    __mapper_args__ = {"confirm_deleted_rows": False}  # noqa: RUF012 (read once by the mapper)

    id: Mapped[int] = mapped_column(primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(String(32))  # hard_bounce, complaint, erased, manual
    source: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def suppressed(email_hash: SQLColumnExpression[str] | str) -> ColumnElement[bool]:
    """Return the one rule for "this address is on the suppression list" (matched by hash).

    Every check uses it: the send's freeze and every count of eligible readers (through
    app.sends.store.ledger.eligible_readers), sign-ups, confirmations, imports by hand.
    """
    return exists().where(Suppression.email_hash == email_hash)
