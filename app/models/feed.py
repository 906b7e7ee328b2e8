"""RSS/Atom feeds that become issues, and the entries already seen."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class Feed(Base):
    """One feed polled on a schedule; its new entries become one issue (a draft or a send)."""

    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    every: Mapped[str] = mapped_column(String(40))  # "PT1H" or "daily 06:00" (UTC)
    # The newsletter its issues belong to (1 is the default one).
    newsletter_id: Mapped[int] = mapped_column(default=1, server_default="1")
    mode: Mapped[str] = mapped_column(String(8))  # draft or send
    max_items: Mapped[int] = mapped_column(default=10)
    title: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Due when next_poll_at has passed; a poller moves it forward before fetching (a lease).
    next_poll_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_poll_at: Mapped[datetime | None] = mapped_column(default=None)
    last_status: Mapped[int | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    failures: Mapped[int] = mapped_column(default=0)  # in a row; resets on a good poll
    etag: Mapped[str | None] = mapped_column(String(300), default=None)
    last_modified: Mapped[str | None] = mapped_column(String(100), default=None)
    primed: Mapped[bool] = mapped_column(default=False)  # the back catalogue is recorded
    last_issue_id: Mapped[int | None] = mapped_column(
        ForeignKey("issues.id", ondelete="SET NULL"), default=None
    )

    __table_args__ = (Index("ix_feeds_next_poll_at", "next_poll_at"),)


class FeedItem(Base):
    """An entry seen in a feed, by its guid or id (or its link when it has neither)."""

    __tablename__ = "feed_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))  # SHA-256 of the guid, id or link
    title: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str] = mapped_column(String(2000), default="")
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    issue_id: Mapped[int | None] = mapped_column(
        ForeignKey("issues.id", ondelete="SET NULL"), default=None
    )

    __table_args__ = (UniqueConstraint("feed_id", "key"),)
