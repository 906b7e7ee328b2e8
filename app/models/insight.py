"""Outbound webhooks with their outbox of deliveries, link clicks, and process heartbeats."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class Webhook(Base):
    """An editor's endpoint that hears about chosen events, signed with its own secret."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Kept as is: it must sign every request, so a one-way hash would not do.
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)
    disabled_reason: Mapped[str | None] = mapped_column(String(500), default=None)


class WebhookDeliveryStatus(enum.StrEnum):
    """Where one event's POST to one webhook stands."""

    pending = "pending"  # due at next_attempt_at
    sending = "sending"  # leased by a sender loop until lease_expires_at
    delivered = "delivered"  # the endpoint answered 2xx
    failed = "failed"  # given up (a day of failures, or the webhook was removed/disabled)


class WebhookDelivery(Base):
    """One event for one webhook: written in the transaction of the change (an outbox)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(40))
    event: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)  # the exact bytes that are signed and sent
    status: Mapped[str] = mapped_column(String(16), default=WebhookDeliveryStatus.pending)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_status_code: Mapped[int | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        # The sender loop looks for due rows; the delivery log lists one webhook's newest rows.
        Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook_id", "webhook_id", "id"),
    )


class Click(Base):
    """One click on a rewritten link; the reader is unknown unless TRACK_READERS is on."""

    __tablename__ = "clicks"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    link_index: Mapped[int] = mapped_column(default=0)
    url: Mapped[str] = mapped_column(String(2000))
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), default=None
    )
    scanner: Mapped[bool] = mapped_column(default=False)
    clicked_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_clicks_issue_url", "issue_id", "url"),
        # Segments ask whether a reader clicked anything within a period.
        Index("ix_clicks_subscriber_clicked", "subscriber_id", "clicked_at"),
    )


class Heartbeat(Base):
    """The last sign of life of one worker process (its background loops beat every few s)."""

    __tablename__ = "heartbeats"

    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    beat_at: Mapped[datetime] = mapped_column(default=utcnow)
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
