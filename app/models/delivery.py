"""The delivery ledger (one row per issue × subscriber) and the transactional outbox."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class DeliveryStatus(enum.StrEnum):
    """Where one message stands. `unknown`: the relay may have accepted it; never resent blindly."""

    pending = "pending"
    sending = "sending"
    sent = "sent"
    retry = "retry"
    failed = "failed"
    unknown = "unknown"
    cancelled = "cancelled"


OPEN_STATUSES = (DeliveryStatus.pending, DeliveryStatus.sending, DeliveryStatus.retry)


class Delivery(Base):
    """One issue to one subscriber: the queue row and its record."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.pending)
    attempts: Mapped[int] = mapped_column(default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_reply: Mapped[str | None] = mapped_column(String(500), default=None)
    message_id: Mapped[str | None] = mapped_column(String(250), default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the worker handed the row to SMTP (set in small groups just before): after a crash
    # only handed rows can be `unknown`; the rest go back to the queue.
    handed_at: Mapped[datetime | None] = mapped_column(default=None)
    # When an editor sent an `unknown` row again (resend-unknown works once per row).
    requeued_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        UniqueConstraint("issue_id", "subscriber_id"),
        # The claim query walks open rows of one issue in id order.
        Index("ix_deliveries_issue_status_id", "issue_id", "status", "id"),
        # The per-recipient logs page by id within an issue or a subscriber.
        Index("ix_deliveries_issue_id_id", "issue_id", "id"),
        Index("ix_deliveries_subscriber_id_id", "subscriber_id", "id"),
        # Partial: only leased rows are ever looked up by lease expiry.
        Index(
            "ix_deliveries_status_lease",
            "status",
            "lease_expires_at",
            postgresql_where=text("status = 'sending'"),
            sqlite_where=text("status = 'sending'"),
        ),
        # The send rate (messages in the last minute) reads recent sent_at of one issue;
        # partial, so freezing a million pending rows does not pay for it.
        Index(
            "ix_deliveries_issue_sent_at",
            "issue_id",
            "sent_at",
            postgresql_where=text("sent_at IS NOT NULL"),
            sqlite_where=text("sent_at IS NOT NULL"),
        ),
    )


class OutboxKind(enum.StrEnum):
    """Transactional mail that is not an issue delivery."""

    confirm = "confirm"
    test = "test"
    welcome = "welcome"  # once, after a reader confirms


class OutboxMessage(Base):
    """A confirmation or test email waiting for the worker; survives restarts like deliveries."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    to_address: Mapped[str] = mapped_column(String(320))
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), default=None
    )
    issue_id: Mapped[int | None] = mapped_column(
        ForeignKey("issues.id", ondelete="CASCADE"), default=None
    )
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.pending)
    attempts: Mapped[int] = mapped_column(default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_reply: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (Index("ix_outbox_status_id", "status", "id"),)
