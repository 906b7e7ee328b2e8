"""Newsletters and who takes which: one install can publish several lists."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow

# The migration creates the default newsletter with this id; every old issue, reader and
# URL belongs to it, and an issue created without a newsletter names it.
DEFAULT_NEWSLETTER_ID = 1


class SubscriptionStatus(enum.StrEnum):
    """A reader's standing with one newsletter."""

    pending = "pending"  # signed up, the confirmation covers it
    active = "active"
    unsubscribed = "unsubscribed"


class Newsletter(Base):
    """One list with its own name and sender; a field left empty falls back to the settings."""

    __tablename__ = "newsletters"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    tagline: Mapped[str | None] = mapped_column(String(300), default=None)
    from_address: Mapped[str | None] = mapped_column(String(320), default=None)
    reply_to: Mapped[str | None] = mapped_column(String(320), default=None)
    postal_address: Mapped[str | None] = mapped_column(Text, default=None)
    list_id: Mapped[str | None] = mapped_column(String(255), default=None)
    # The relay (MORNINGPOST_SMTP_URL ?name=) every issue of it goes through; None: the pool.
    relay: Mapped[str | None] = mapped_column(String(60), default=None)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Subscription(Base):
    """One reader's subscription to one newsletter."""

    __tablename__ = "subscriptions"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    newsletter_id: Mapped[int] = mapped_column(
        ForeignKey("newsletters.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(16), default=SubscriptionStatus.pending)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    # A send's freeze walks a newsletter's active readers through this index.
    __table_args__ = (
        Index("ix_subscriptions_newsletter_status", "newsletter_id", "status", "subscriber_id"),
    )
