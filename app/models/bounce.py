"""Bounce and complaint events, and the counters behind sign-up rate limits."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class BounceKind(enum.StrEnum):
    """What an inbound report said about one delivery."""

    hard = "hard"  # the address does not exist: suppress now
    soft = "soft"  # full mailbox, temporary failure: suppress after repeated ones
    policy = "policy"  # refused for our content or authentication: fix our side, keep the reader
    complaint = "complaint"  # the reader marked the issue as spam: suppress now
    delayed = "delayed"  # still being retried by a relay: informative only


class BounceEvent(Base):
    """One per-recipient outcome from a DSN or a feedback report."""

    __tablename__ = "bounce_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL"), default=None
    )
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), default=None
    )
    kind: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[str] = mapped_column(String(16), default="")
    diagnostic: Mapped[str] = mapped_column(String(500), default="")
    source: Mapped[str] = mapped_column(String(16))  # smtp, webhook or a provider (ses, …)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        # The soft-bounce threshold counts one subscriber's recent events.
        Index("ix_bounce_events_subscriber_kind", "subscriber_id", "kind", "received_at"),
        Index("ix_bounce_events_delivery", "delivery_id"),
    )


class RateLimitHit(Base):
    """Requests counted for one key (a hashed IP or address) in one fixed window."""

    __tablename__ = "rate_limit_hits"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window: Mapped[int] = mapped_column(primary_key=True)  # window start, epoch seconds
    count: Mapped[int] = mapped_column(default=0)


class ProviderEvent(Base):
    """An email provider's event id seen once: a redelivered webhook counts only the first time.

    Mailgun's one-time signature tokens are kept here too (provider "mailgun-token"), so a
    replayed request is refused even when its event id is new.
    """

    __tablename__ = "provider_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("provider", "event_id"),
        # The console asks per provider whether (and when) an event last arrived.
        Index("ix_provider_events_provider_received", "provider", "received_at"),
    )
